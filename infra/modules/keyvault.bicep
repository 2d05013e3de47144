// Key Vault in RBAC mode (no access policies): the identity reads secrets as Key Vault Secrets
// User, the deployer may write them as Key Vault Secrets Officer (modules/rbac.bicep).

@description('Vault name (3-24 characters).')
param name string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

@description('Purge protection (cannot be switched off again once on).')
param purgeProtection bool

@description('Private networking: public access off, a private endpoint instead.')
param privateNetworking bool

@description('Subnet for the private endpoint (private networking only).')
param privateEndpointSubnetId string

@description('privatelink.vaultcore private DNS zone id (private networking only).')
param dnsZoneId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // ARM refuses an explicit false here; null leaves purge protection off.
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = if (privateNetworking) {
  name: 'pe-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'pe-${name}'
        properties: {
          privateLinkServiceId: vault.id
          groupIds: [
            'vault'
          ]
        }
      }
    ]
  }
}

resource endpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = if (privateNetworking) {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'vault'
        properties: {
          privateDnsZoneId: dnsZoneId
        }
      }
    ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
