// A new Azure ML workspace, when none is given: its own storage and key vault, the shared App Insights.
param location string
param tags object
param token string
param name string
param applicationInsightsId string

resource mlStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stml${token}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: { allowBlobPublicAccess: false, minimumTlsVersion: 'TLS1_2', supportsHttpsTrafficOnly: true }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${token}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  name: name
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    friendlyName: 'Fine-Tune Autopilot'
    storageAccount: mlStorage.id
    keyVault: vault.id
    applicationInsights: applicationInsightsId
    publicNetworkAccess: 'Enabled'
  }
}

output name string = workspace.name
