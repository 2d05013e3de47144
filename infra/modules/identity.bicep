// The one user-assigned identity both apps run as: storage, Key Vault, Application Insights
// ingestion, and (as a federated credential of the multi-tenant app registration) the customer
// tenants. User-assigned so its ids exist before the apps and survive their re-creation.

@description('Name of the identity.')
param name string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
