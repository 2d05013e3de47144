// Private networking: one virtual network with a subnet per Flex app (delegated to
// Microsoft.App/environments, as Flex Consumption VNet integration requires) and one for private
// endpoints, plus the private DNS zones those endpoints register in.

@description('Virtual network name.')
param name string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

@description('Address space; the three subnets are its first three /24 blocks.')
param addressPrefix string

var subnets = [
  {
    name: 'snet-handler'
    prefix: cidrSubnet(addressPrefix, 24, 0)
    delegated: true
  }
  {
    name: 'snet-powershell'
    prefix: cidrSubnet(addressPrefix, 24, 1)
    delegated: true
  }
  {
    name: 'snet-private-endpoints'
    prefix: cidrSubnet(addressPrefix, 24, 2)
    delegated: false
  }
]

var dnsZones = [
  'privatelink.blob.${environment().suffixes.storage}'
  'privatelink.queue.${environment().suffixes.storage}'
  'privatelink.vaultcore.azure.net'
]

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      for subnet in subnets: {
        name: subnet.name
        properties: {
          addressPrefix: subnet.prefix
          privateEndpointNetworkPolicies: 'Disabled'
          delegations: subnet.delegated
            ? [
                {
                  name: 'flex-consumption'
                  properties: {
                    serviceName: 'Microsoft.App/environments'
                  }
                }
              ]
            : []
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for zone in dnsZones: {
    name: zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (zone, i) in dnsZones: {
    parent: zones[i]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

output handlerSubnetId string = vnet.properties.subnets[0].id
output powerShellSubnetId string = vnet.properties.subnets[1].id
output privateEndpointSubnetId string = vnet.properties.subnets[2].id
output blobDnsZoneId string = zones[0].id
output queueDnsZoneId string = zones[1].id
output keyVaultDnsZoneId string = zones[2].id
