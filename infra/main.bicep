// Fine-Tune Autopilot on Azure: `azd up` creates everything the function app needs in one resource group.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags derive from it')
param environmentName string

@minLength(1)
@description('Region for every resource (pick one with GPU quota for Azure ML fine-tuning)')
param location string

@description('Object id of the person running azd; gets data access to the storage account for `autopilot drop`')
param principalId string = ''

@description('An existing Azure ML workspace to use; empty creates a new one')
param azureMlWorkspaceName string = ''

@description('Resource group of the existing workspace; empty means the app resource group')
param azureMlResourceGroup string = ''

@description('Name of the Event Grid system topic an existing workspace already has; empty creates one (in the workspace region)')
param azureMlSystemTopicName string = ''

@description('Base model in the azureml registry, e.g. Phi-4')
param baseModel string = 'Phi-4'

@description('Idle time after which the sweep deletes an endpoint, e.g. 2h')
param idleTtl string = '2h'

@secure()
@description('The front door key clients send as Authorization: Bearer KEY (azd env set FRONT_DOOR_KEY ...); empty: the front door refuses every request')
param frontDoorKey string = ''

@description('Optional Teams/Slack webhook for alerts')
param alertWebhookUrl string = ''

@description('Key Vault (in this subscription, RBAC authorization) holding the webhook alerts\' signing secret as `alert-webhook-secret` (whsec_ + base64); empty sends webhook alerts unsigned')
param alertWebhookSecretVault string = ''

@description('Resource group of that Key Vault; empty means the app resource group')
param alertWebhookSecretVaultResourceGroup string = ''

@description('Create the Event Grid subscriptions (true once the function code is deployed; the postdeploy hook sets it)')
param wireEvents bool = false

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var containers = { incoming: 'incoming', staged: 'staged', rejected: 'rejected' }
var ledgerTable = 'runs'
// The step queue: the steps function advances runs from it; the host moves a message that failed
// maxDequeueCount times (host.json) to '<name>-poison', which the steps_poison function reads.
var stepQueue = 'autopilot-steps'
// azd keeps the AZUREML_WORKSPACE output in its environment and passes it back as azureMlWorkspaceName: our
// own workspace's name still means "ours, create it" (after `azd down` it is gone and must be made again).
var ownWorkspaceName = 'mlw-${token}'
var createWorkspace = empty(azureMlWorkspaceName) || azureMlWorkspaceName == ownWorkspaceName
var mlWorkspaceName = createWorkspace ? ownWorkspaceName : azureMlWorkspaceName
var mlResourceGroupName = empty(azureMlResourceGroup) ? rg.name : azureMlResourceGroup
var signAlerts = !empty(alertWebhookSecretVault)
var webhookSecretReference = '@Microsoft.KeyVault(VaultName=${alertWebhookSecretVault};SecretName=alert-webhook-secret)'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    containers: [containers.incoming, containers.staged, containers.rejected]
    ledgerTable: ledgerTable
    queues: [stepQueue, '${stepQueue}-poison']
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module workspace 'modules/ml-workspace.bicep' = if (createWorkspace) {
  name: 'ml-workspace'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    name: mlWorkspaceName
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    storageAccountName: storage.outputs.name
    deploymentContainer: storage.outputs.deploymentContainer
    appInsightsConnectionString: monitoring.outputs.connectionString
    appSettings: {
      AUTOPILOT_PLATFORM: 'azureml'
      AUTOPILOT_STORAGE__blobServiceUri: storage.outputs.blobEndpoint
      AUTOPILOT_STORAGE__queueServiceUri: storage.outputs.queueEndpoint
      AUTOPILOT_STORAGE__tableServiceUri: storage.outputs.tableEndpoint
      AUTOPILOT_STORAGE__credential: 'managedidentity'
      AZUREML_SUBSCRIPTION_ID: subscription().subscriptionId
      AZUREML_RESOURCE_GROUP: mlResourceGroupName
      AZUREML_WORKSPACE: mlWorkspaceName
      AZUREML_REGISTRY: 'azureml'
      AZUREML_COMPUTE: 'serverless'
      AZUREML_INSTANCE_TYPE_FINETUNE: 'Standard_NC24ads_A100_v4'
      AZUREML_INSTANCE_TYPE_INFERENCE: 'Standard_NC24ads_A100_v4'
      AZUREML_PIPELINE_VERSION: ''
      AZUREML_EXPERIMENT: 'finetune-autopilot'
      BASE_MODEL: baseModel
      INCOMING_CONTAINER: containers.incoming
      STAGED_CONTAINER: containers.staged
      REJECTED_CONTAINER: containers.rejected
      LEDGER_TABLE: ledgerTable
      JOB_EVENT_QUEUE: 'autopilot-job-events'
      ENDPOINT_NAME: 'autopilot-chat'
      // Online endpoint names are unique per region: the app suffixes ENDPOINT_NAME with a hash of this.
      AUTOPILOT_INSTALL_ID: token
      STEP_TIMEOUT: '15m'
      // A step's platform calls stop by then: well under host.json's functionTimeout (10 min).
      STEP_DEADLINE: '5m'
      STEP_QUEUE: stepQueue
      DEPLOY_POLL_INTERVAL: '30s'
      DEPLOY_POLL_MAX_INTERVAL: '5m'
      DEPLOY_TIMEOUT: '60m'
      RECONCILE_AFTER: '10m'
      LOST_UPLOAD_AFTER: '1h'
      MANIFEST_WAIT: '24h'
      TEST_FRACTION: '0.05'
      TEST_ROWS_MAX: '1000'
      IDLE_TTL: idleTtl
      FRONT_DOOR_KEY: frontDoorKey
      FRONT_HOLD: '200s'
      ENDPOINT_DELETE_AFTER: '30d'
      IDLE_SWEEP_SCHEDULE: '0 */15 * * * *'
      SWEEP_DRY_RUN: 'false'
      SWEEP_MAX_DELETIONS: '50'
      COST_REFERENCE_HOURS: '360'
      SMOKE_MAX_NEW_TOKENS: '16'
      SMOKE_CONVERSATIONS: '3'
      EVAL_GATE: 'true'
      EVAL_GATE_MAX_DROP: '0.05'
      EVAL_GATE_BASE: 'true'
      MAX_LINE_BYTES: '8388608'
      REPORT_MAX_ERRORS: '20'
      CONVERSATION_TOKEN_LIMIT: '4096'
      MAX_TOKENS_PER_RUN: '50000000'
      TRAINING_COST_PER_MILLION_TOKENS: '3'
      MIN_TRAINING_ROWS: '10'
      INGEST_WORKERS: '0'
      SCREEN_SECRETS: 'reject'
      SCREEN_PERSONAL_DATA: 'redact'
      ALERT_TOPIC_ENDPOINT: alerts.outputs.endpoint
      ALERT_WEBHOOK_URL: alertWebhookUrl
      // A Key Vault reference: the platform resolves it with the app's identity (webhookSecretAccess below).
      ALERT_WEBHOOK_SECRET: signAlerts ? webhookSecretReference : ''
    }
  }
}

module storageAccess 'modules/storage-access.bicep' = {
  name: 'storage-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    alertTopicName: alerts.outputs.name
    appPrincipalId: app.outputs.principalId
    userPrincipalId: principalId
  }
}

module mlAccess 'modules/ml-access.bicep' = {
  name: 'ml-access'
  scope: resourceGroup(mlResourceGroupName)
  params: {
    tags: tags
    workspaceName: mlWorkspaceName
    existingSystemTopicName: azureMlSystemTopicName
    appPrincipalId: app.outputs.principalId
    functionAppId: app.outputs.id
    wireEvents: wireEvents
  }
  dependsOn: [workspace]
}

module webhookSecretAccess 'modules/webhook-secret-access.bicep' = if (signAlerts) {
  name: 'webhook-secret-access'
  scope: resourceGroup(empty(alertWebhookSecretVaultResourceGroup) ? rg.name : alertWebhookSecretVaultResourceGroup)
  params: {
    vaultName: alertWebhookSecretVault
    appPrincipalId: app.outputs.principalId
  }
}

module blobEvents 'modules/blob-events.bicep' = if (wireEvents) {
  name: 'blob-events'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    functionAppName: app.outputs.name
    incomingContainer: containers.incoming
  }
}

// What `autopilot` needs on a laptop (`eval "$(azd env get-values)"`): the settings the app gets that differ
// from the code's defaults, so the CLI reads the same workspace, storage and endpoint name as the app
// (tests/unit/test_infra.py compares the two).
output AZURE_RESOURCE_GROUP string = rg.name
output AUTOPILOT_PLATFORM string = 'azureml'
output AZUREML_SUBSCRIPTION_ID string = subscription().subscriptionId
output AUTOPILOT_INSTALL_ID string = token
output BASE_MODEL string = baseModel
output IDLE_TTL string = idleTtl
output AUTOPILOT_STORAGE__queueServiceUri string = storage.outputs.queueEndpoint
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AUTOPILOT_URL string = app.outputs.url
output AUTOPILOT_STORAGE__blobServiceUri string = storage.outputs.blobEndpoint
output AUTOPILOT_STORAGE__tableServiceUri string = storage.outputs.tableEndpoint
output AZUREML_WORKSPACE string = mlWorkspaceName
output AZUREML_RESOURCE_GROUP string = mlResourceGroupName
output ALERT_TOPIC_ENDPOINT string = alerts.outputs.endpoint
