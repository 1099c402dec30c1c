// In the Key Vault's resource group: the app reads the webhook alerts' signing secret (ALERT_WEBHOOK_SECRET,
// a Key Vault reference) with its identity. The vault is yours (RBAC authorization); the secret never passes
// through the deployment.
param vaultName string
param appPrincipalId string

var roles = {
  // Read secret contents, nothing else.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}
