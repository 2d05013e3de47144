// The one storage account: the Functions host's own state (timer leases, keys), each app's
// deployment package, the product's containers and queues. No account keys: every client
// (the host, the handler, the PowerShell app, Flex's package download) uses the managed identity.

@description('Storage account name (3-24 lowercase letters and digits).')
param name string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

@description('Blob containers to create.')
param containers array

@description('Queues to create.')
param queues array

@description('Private networking: public access off, private endpoints for blob and queue.')
param privateNetworking bool

@description('Subnet for the private endpoints (private networking only).')
param privateEndpointSubnetId string

@description('privatelink.blob private DNS zone id (private networking only).')
param blobDnsZoneId string

@description('privatelink.queue private DNS zone id (private networking only).')
param queueDnsZoneId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queues: {
    parent: queueService
    name: queue
  }
]

var privateEndpoints = [
  {
    service: 'blob'
    zoneId: blobDnsZoneId
  }
  {
    service: 'queue'
    zoneId: queueDnsZoneId
  }
]

resource endpoints 'Microsoft.Network/privateEndpoints@2024-01-01' = [
  for endpoint in privateEndpoints: if (privateNetworking) {
    name: 'pe-${name}-${endpoint.service}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: privateEndpointSubnetId
      }
      privateLinkServiceConnections: [
        {
          name: 'pe-${name}-${endpoint.service}'
          properties: {
            privateLinkServiceId: account.id
            groupIds: [
              endpoint.service
            ]
          }
        }
      ]
    }
  }
]

resource endpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = [
  for (endpoint, i) in privateEndpoints: if (privateNetworking) {
    parent: endpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: endpoint.service
          properties: {
            privateDnsZoneId: endpoint.zoneId
          }
        }
      ]
    }
  }
]

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
