// One Function App on its own Flex Consumption plan (Flex allows one app per plan). The package
// comes from a blob container, read with the user-assigned identity; runtime, memory, scale and
// HTTP concurrency are Flex's functionAppConfig, not app settings.

@description('Plan name.')
param planName string

@description('App name (also the *.azurewebsites.net host name).')
param appName string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

@description('Flex runtime name: custom for the Rust handler, powerShell for the PowerShell app.')
param runtimeName string

@description('Flex runtime version: 1.0 for custom, 7.4 for powerShell.')
param runtimeVersion string

@description('Instance memory in MB.')
param instanceMemoryMB int

@description('Most instances at once.')
param maximumInstanceCount int

@description('HTTP requests per instance; 0 keeps the platform default.')
param httpPerInstanceConcurrency int

@description('Always-ready instances for the http group; 0 for none.')
param alwaysReadyHttpInstances int

@description('Resource id of the user-assigned identity.')
param identityId string

@description('URL of the blob container holding the deployment package.')
param packageContainerUrl string

@description('Subnet to integrate with (delegated to Microsoft.App/environments); empty for none.')
param subnetId string

@description('App settings.')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    // Platform Key Vault references (@Microsoft.KeyVault(...)) are resolved with this identity.
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: packageContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReadyHttpInstances > 0
          ? [
              {
                name: 'http'
                instanceCount: alwaysReadyHttpInstances
              }
            ]
          : []
        triggers: httpPerInstanceConcurrency > 0
          ? {
              http: {
                perInstanceConcurrency: httpPerInstanceConcurrency
              }
            }
          : null
      }
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No FTP or basic-auth publishing: deployments use Entra (az CLI, azd) only.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
