// The Event Grid topic alerts are published to (CloudEvents 1.0); subscribe email, Teams or a queue to it.
param location string
param tags object
param token string

resource topic 'Microsoft.EventGrid/topics@2024-06-01-preview' = {
  name: 'evgt-alerts-${token}'
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output name string = topic.name
output endpoint string = topic.properties.endpoint
