// In the workspace's resource group: the app's roles on the workspace, and its run events to job_events.
param tags object
param workspaceName string
@description('The Event Grid system topic the workspace already has (one per source is allowed); empty creates one')
param existingSystemTopicName string
param appPrincipalId string
param functionAppId string
param wireEvents bool

var roles = {
  azureMlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  // The idle sweep reads endpoints' RequestsPerMinute; without it every endpoint counts as in use.
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource appRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.azureMlDataScientist, roles.monitoringReader]: {
    name: guid(workspace.id, appPrincipalId, role)
    scope: workspace
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

// Event Grid allows one system topic per source, and a system topic lives in its source's region: an existing
// workspace's topic is reused by name; a new one is made in the workspace's region (not the app's).
var createTopic = empty(existingSystemTopicName)
var topicName = createTopic ? 'evgst-${workspaceName}' : existingSystemTopicName

resource runEvents 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = if (createTopic) {
  name: topicName
  location: workspace.location
  tags: tags
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource toJobEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (wireEvents) {
  name: '${topicName}/run-events-to-job-events'
  dependsOn: [runEvents]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${functionAppId}/functions/job_events', maxEventsPerBatch: 1 }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
  }
}
