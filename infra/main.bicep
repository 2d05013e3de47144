// The whole deployment: one resource group holding the MCP handler app and the sibling
// PowerShell app on Flex Consumption, one storage account, one user-assigned identity, Key Vault,
// Log Analytics + Application Insights, and optionally a private network and an Entra app
// registration for inbound auth. Every parameter is described; README.md "Deploying" walks
// through them. Subscription scope so that `azd up` (or `az deployment sub create`) can create
// the resource group too.
targetScope = 'subscription'

metadata description = 'Defender XDR and Sentinel MCP server (Rust custom handler) on Azure Functions Flex Consumption'

// ---------------------------------------------------------------------------------------------
// Where and what to call things
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(40)
@description('Name of this deployment (the azd environment name, e.g. mssp-prod). Part of the resource group name and of the hash that makes resource names unique.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string

@description('Resource group to create (or reuse if it exists). Empty means rg-<environmentName>.')
param resourceGroupName string = ''

@description('Tags added to every resource.')
param tags object = {}

@description('Object id of the person or pipeline running the deployment (azd passes AZURE_PRINCIPAL_ID). It gets Key Vault Secrets Officer on the vault so it can store the outbound client secret. Empty: no assignment (store secrets some other way).')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Whether deployerPrincipalId is a user or a service principal (a pipeline).')
param deployerPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Outbound identity: how the handler gets tokens in customer tenants
// ---------------------------------------------------------------------------------------------

@allowed([
  'managed_identity_federated'
  'client_secret'
])
@description('AUTH_MODE. managed_identity_federated: the user-assigned identity is a federated credential of the multi-tenant app, so no secret exists anywhere (recommended). client_secret: the app\'s client secret, kept in Key Vault and read through a Key Vault reference.')
param authMode string = 'managed_identity_federated'

@description('AZURE_CLIENT_ID: client id of the multi-tenant app registration that each customer tenant admin-consents to (README "After deploying"). Required: the handler refuses to start without it.')
param outboundAppClientId string

@description('Name of the Key Vault secret holding the outbound app\'s client secret; only used when authMode is client_secret. Store the secret under this name after the first deployment.')
param clientSecretName string = 'outbound-client-secret'

// ---------------------------------------------------------------------------------------------
// Tenants and the MCP surface
// ---------------------------------------------------------------------------------------------

@description('TENANTS: the allow-list of customer tenants, as an array of {tenant_id, display_name, enabled, workspaces: [{subscription_id, resource_group, workspace_name, workspace_id}]}. No other tenant is ever called. Can also be edited later as the app setting.')
param tenants array = []

@description('DEFAULT_TENANT_ID: tenant used when a tool call names none. Leave empty for MSSPs so every call must name its tenant.')
param defaultTenantId string = ''

@description('MCP_READ_ONLY: true removes every tool that changes anything.')
param mcpReadOnly bool = false

@description('MCP_TOOLSETS: comma-separated toolsets to offer (tenants, defender, sentinel); empty offers all.')
param mcpToolsets string = ''

@description('MCP_ALLOWED_HOSTS: extra Host names accepted on /api/mcp (custom domains). The app\'s own *.azurewebsites.net name is always accepted.')
param mcpAllowedHosts string = ''

@description('MCP_ALLOWED_ORIGINS: browser origins allowed to call /api/mcp (e.g. https://portal.contoso.com:443). Non-browser clients are unaffected.')
param mcpAllowedOrigins string = ''

@minValue(1024)
@description('MCP_MAX_REQUEST_BYTES: largest MCP request body accepted; larger gets 413.')
param mcpMaxRequestBytes int = 1048576

@description('AUTH_INBOUND_MODE: who may call /api/mcp on top of the function key. entra: Entra ID bearer tokens validated by the handler (set authAudience and, optionally, authAllowedTenants); easyauth: App Service authentication fronts the app; none: the function key alone, every caller gets the reader role.')
@allowed([
  'entra'
  'easyauth'
  'none'
])
param authInboundMode string = 'none'

@description('AUTH_AUDIENCE: accepted token audiences (comma-separated): the server app registration\'s client id and/or application id URI. Required when authInboundMode is entra.')
param authAudience string = ''

@description('AUTH_ALLOWED_TENANTS: tenant ids whose users and apps may call (comma-separated); empty: the tenant of this deployment.')
param authAllowedTenants string = ''

@description('APPROVAL_FALLBACK: for destructive tools when the client cannot ask the person: page (a person approves on the approval page, signed in through App Service authentication; needs enableInboundEntraAuth), confirm (a preview and a single-use token the client passes back; nothing proves a person saw it), or refuse. Empty: page with App Service authentication, else confirm.')
@allowed([
  ''
  'page'
  'refuse'
  'confirm'
])
param approvalFallback string = ''

@description('APPROVAL_SECOND_PERSON: off, destructive (every destructive call needs a second person with the approver role or Admin), or a number of targets above which it does.')
param approvalSecondPerson string = 'off'

@description('DESTRUCTIVE_TOOLS_DISABLED: true refuses every destructive tool at once (for an incident in the tooling itself).')
param destructiveToolsDisabled bool = false

@description('APPROVAL_SIGNING_KEY: key that seals approval state and confirmation tokens, shared by all instances; a new one is generated on each deployment (outstanding confirmations then expire).')
@secure()
param approvalSigningKey string = newGuid()

@description('HUNT_TICK_BUDGET_SECONDS: how long one timer invocation runs hunts before leaving the rest to the next tick; keep it well under the function timeout (10 minutes in host.json).')
@minValue(1)
@maxValue(540)
param huntTickBudgetSeconds int = 240

@description('HUNT_SCHEDULE: six-field NCRONTAB (UTC) for the function-hunts timer, i.e. how often due hunts are looked for. Each tick is a (tiny) billed execution.')
param huntSchedule string = '0 */5 * * * *'

// ---------------------------------------------------------------------------------------------
// Microsoft API endpoints (change for a Defender region or a sovereign cloud)
// ---------------------------------------------------------------------------------------------

@description('DEFENDER_API_BASE_URL: the Defender for Endpoint API; a regional host (e.g. https://api-eu.securitycenter.microsoft.com) keeps traffic in region.')
param defenderApiBaseUrl string = 'https://api.securitycenter.microsoft.com'

@description('GRAPH_BASE_URL: Microsoft Graph.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('ARM_BASE_URL: Azure Resource Manager (Sentinel, workspaces).')
param armBaseUrl string = 'https://management.azure.com'

@description('LOG_ANALYTICS_BASE_URL: the Log Analytics query API.')
param logAnalyticsBaseUrl string = 'https://api.loganalytics.io'

@description('AZURE_AUTHORITY_HOST: the Entra token authority.')
param authorityHost string = 'https://login.microsoftonline.com'

@minValue(1)
@maxValue(220)
@description('OUTBOUND_TIMEOUT_SECONDS: timeout of one Microsoft API call. Keep it well under the 230 s HTTP limit of Functions.')
param outboundTimeoutSeconds int = 30

@minValue(0)
@maxValue(10)
@description('OUTBOUND_MAX_RETRIES: retries after throttling, 5xx and connection failures (actions not safe to repeat are only retried when the server certainly did not act).')
param outboundMaxRetries int = 3

@description('RUST_LOG: the handler\'s log filter, e.g. info or info,handler=debug.')
param rustLog string = 'info'

// ---------------------------------------------------------------------------------------------
// Scale and cost (Flex Consumption)
// ---------------------------------------------------------------------------------------------

@allowed([
  512
  2048
  4096
])
@description('Instance memory of the handler app in MB (512 = 0.25 vCPU, 2048 = 1 vCPU, 4096 = 2 vCPU). Billed per GB-second while an instance runs; the static binary is comfortable in 512.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most handler instances Flex may run at once (40 is the platform minimum). A cost ceiling under load, and a cap on concurrent calls into customer tenants.')
param maximumInstanceCount int = 40

@minValue(1)
@maxValue(1000)
@description('HTTP requests one handler instance takes at once before Flex adds an instance. Tool calls mostly wait on Microsoft APIs, so one instance handles many.')
param httpPerInstanceConcurrency int = 16

@minValue(0)
@maxValue(10)
@description('Always-ready instances for HTTP (removes cold starts; billed around the clock as baseline even when idle, see README "Cost"). 0 keeps the cost at rest near zero.')
param alwaysReadyHttpInstances int = 0

@allowed([
  512
  2048
  4096
])
@description('Instance memory of the PowerShell app in MB.')
param powerShellInstanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most PowerShell app instances Flex may run at once.')
param powerShellMaximumInstanceCount int = 40

@description('Extra app settings for the PowerShell app (its own settings, on top of the shared identity, storage, Key Vault, tenant and telemetry settings this template sets).')
param powerShellExtraAppSettings object = {}

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('Resource id of an existing Log Analytics workspace for Application Insights (any resource group or subscription you can read). Empty: create one here.')
param existingLogAnalyticsWorkspaceId string = ''

@minValue(30)
@maxValue(730)
@description('Retention in days of the workspace created here (30 is included in the ingestion price).')
param logRetentionInDays int = 30

@description('Daily ingestion cap in GB of the workspace created here; -1 for none. A cap bounds the bill if something starts logging in a loop.')
param logDailyQuotaGb int = 1

// ---------------------------------------------------------------------------------------------
// Key Vault
// ---------------------------------------------------------------------------------------------

@description('Purge protection on the vault: deleted secrets cannot be purged before the retention ends. Recommended for production; it also means a vault with the same name cannot be recreated for 90 days after deletion.')
param keyVaultPurgeProtection bool = true

// ---------------------------------------------------------------------------------------------
// Networking
// ---------------------------------------------------------------------------------------------

@description('Private networking: a virtual network, both apps integrated into it, private endpoints for storage (blob, queue) and Key Vault, and public network access to them switched off. The MCP endpoint itself stays public (clients reach it with a key or an Entra token). Needs the Microsoft.App resource provider registered.')
param enablePrivateNetworking bool = false

@description('Address space of the virtual network when enablePrivateNetworking is true; three /24 subnets are carved from its start.')
param vnetAddressPrefix string = '10.90.0.0/16'

// ---------------------------------------------------------------------------------------------
// Inbound authentication
// ---------------------------------------------------------------------------------------------

@description('Create an Entra app registration for the MCP endpoint (Microsoft Graph Bicep extension; the deployer needs Application Developer or an equivalent role) and turn on App Service authentication: requests without a valid token for it get 401, and the protected resource metadata (RFC 9728) is served for MCP clients.')
param enableInboundEntraAuth bool = false

@description('Client applications allowed to call the MCP endpoint when enableInboundEntraAuth is true; pre-authorized on the app registration. The default is VS Code.')
param inboundAllowedClientAppIds array = [
  'aebc6443-996d-45c2-90f0-388ff96faa56'
]

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  identity: 'id-mcp-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  logAnalytics: 'log-mcp-${resourceToken}'
  appInsights: 'appi-mcp-${resourceToken}'
  handlerPlan: 'plan-mcp-${resourceToken}'
  handlerApp: 'func-mcp-${resourceToken}'
  powerShellPlan: 'plan-ps-${resourceToken}'
  powerShellApp: 'func-ps-${resourceToken}'
  vnet: 'vnet-mcp-${resourceToken}'
  inboundApp: 'mcp-${environmentName}-${resourceToken}'
}

// Blob containers and queues the product uses. The deployment containers hold each app's zip
// package (Flex pulls it from there with the managed identity).
var handlerPackageContainer = 'app-package-handler'
var powerShellPackageContainer = 'app-package-powershell'
var dataContainers = [
  'hunts'
  'jobs'
  'audit'
  'config'
  'quota'
]
var queues = [
  'ps-jobs'
  'ps-jobs-poison'
  'ops'
  'ops-poison'
]

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module network 'modules/network.bicep' = if (enablePrivateNetworking) {
  name: 'network'
  scope: rg
  params: {
    name: names.vnet
    location: location
    tags: allTags
    addressPrefix: vnetAddressPrefix
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    existingWorkspaceId: existingLogAnalyticsWorkspaceId
    retentionInDays: logRetentionInDays
    dailyQuotaGb: logDailyQuotaGb
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: allTags
    containers: concat([handlerPackageContainer, powerShellPackageContainer], dataContainers)
    queues: queues
    privateNetworking: enablePrivateNetworking
    privateEndpointSubnetId: enablePrivateNetworking ? network!.outputs.privateEndpointSubnetId : ''
    blobDnsZoneId: enablePrivateNetworking ? network!.outputs.blobDnsZoneId : ''
    queueDnsZoneId: enablePrivateNetworking ? network!.outputs.queueDnsZoneId : ''
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    purgeProtection: keyVaultPurgeProtection
    privateNetworking: enablePrivateNetworking
    privateEndpointSubnetId: enablePrivateNetworking ? network!.outputs.privateEndpointSubnetId : ''
    dnsZoneId: enablePrivateNetworking ? network!.outputs.keyVaultDnsZoneId : ''
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module inboundApp 'modules/entra.bicep' = if (enableInboundEntraAuth) {
  name: 'inbound-entra-app'
  scope: rg
  params: {
    uniqueName: names.inboundApp
    displayName: 'Defender XDR & Sentinel MCP (${environmentName})'
    allowedClientAppIds: inboundAllowedClientAppIds
  }
}

// Settings both apps share: storage and telemetry through the managed identity, the outbound
// app registration, the tenant allow-list and the vault.
var sharedAppSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  // Local auth is off on the Application Insights resource: ingestion needs an Entra token of the
  // identity, which holds Monitoring Metrics Publisher on it.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  AUTH_MODE: authMode
  AZURE_CLIENT_ID: outboundAppClientId
  // A Key Vault reference the platform resolves with keyVaultReferenceIdentity; empty (unset)
  // in managed_identity_federated mode, where there is no secret.
  AZURE_CLIENT_SECRET: authMode == 'client_secret'
    ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${clientSecretName})'
    : ''
  MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId
  KEY_VAULT_URL: keyVault.outputs.uri
  TENANTS: string(tenants)
  DEFAULT_TENANT_ID: defaultTenantId
  // The PowerShell app reads the same two names (powershell-app/).
  JOBS_CONTAINER: 'jobs'
  PS_JOBS_QUEUE: 'ps-jobs'
}

// Every setting the handler reads (crates/handler/src/config.rs `settings`), except those the
// platform sets (FUNCTIONS_CUSTOMHANDLER_PORT, WEBSITE_HOSTNAME) and the local-only
// OUTBOUND_TRUSTED_CA_FILE. crates/handler/tests/deployment.rs checks this list.
var handlerAppSettings = union(sharedAppSettings, {
  // Durable operations continue in function-operations; the instances share Microsoft's
  // per-tenant limits and the per-caller request limit through the ledger in QUOTA_CONTAINER.
  OPS_QUEUE: 'ops'
  OPS_LEASE_SECONDS: '60'
  OPS_INLINE_SECONDS: '5'
  QUOTA_CONTAINER: 'quota'
  HUNT_SCHEDULE: huntSchedule
  MCP_ALLOWED_HOSTS: mcpAllowedHosts
  MCP_ALLOWED_ORIGINS: mcpAllowedOrigins
  MCP_MAX_REQUEST_BYTES: string(mcpMaxRequestBytes)
  MCP_READ_ONLY: mcpReadOnly ? 'true' : 'false'
  MCP_TOOLSETS: mcpToolsets
  AZURE_AUTHORITY_HOST: authorityHost
  DEFENDER_API_BASE_URL: defenderApiBaseUrl
  GRAPH_BASE_URL: graphBaseUrl
  ARM_BASE_URL: armBaseUrl
  LOG_ANALYTICS_BASE_URL: logAnalyticsBaseUrl
  OUTBOUND_TIMEOUT_SECONDS: string(outboundTimeoutSeconds)
  OUTBOUND_MAX_RETRIES: string(outboundMaxRetries)
  OUTBOUND_MAX_PACING_SECONDS: '45'
  // Microsoft's documented per-tenant limits for machine and machine-action calls.
  DEFENDER_MACHINE_CALLS_PER_MINUTE: '100'
  DEFENDER_MACHINE_CALLS_PER_HOUR: '1500'
  RUST_LOG: rustLog
  HUNT_STORAGE_CONTAINER: 'hunts'
  HUNT_TICK_BUDGET_SECONDS: string(huntTickBudgetSeconds)
  HUNT_MAX_CATCH_UP: '3'
  HUNT_TENANT_CONCURRENCY: '4'
  HUNT_MAX_ROWS_PER_TENANT: '10000'
  // The in-process schedule is for `handler --sandbox` only; in Azure the timer drives hunts.
  HUNT_LOCAL_INTERVAL_SECONDS: '0'
  PS_MANIFEST_REFRESH_SECONDS: '30'
  PS_JOB_DEADLINE_MINUTES: '60'
  MCP_MAX_ARGUMENT_BYTES: '524288'
  MCP_CALL_DEADLINE_SECONDS: '40'
  MCP_RATE_LIMIT_PER_MINUTE: '120'
  MCP_RATE_LIMIT_BURST: '30'
  AUTH_INBOUND_MODE: authInboundMode
  AUTH_AUDIENCE: authAudience
  AUTH_ALLOWED_TENANTS: empty(authAllowedTenants) ? tenant().tenantId : authAllowedTenants
  AUTH_AUTHORITY_HOST: authorityHost
  AUTH_SCOPE: ''
  AUTH_ROLE_READER: 'MCP.Reader'
  AUTH_ROLE_RESPONDER: 'MCP.Responder'
  AUTH_ROLE_ADMIN: 'MCP.Admin'
  AUTH_LOCAL_ROLE: 'reader'
  APPROVAL_FALLBACK: !empty(approvalFallback) ? approvalFallback : (enableInboundEntraAuth ? 'page' : 'confirm')
  // Two GUIDs: 72 characters, above the handler's minimum key length.
  APPROVAL_SIGNING_KEY: '${approvalSigningKey}${guid(approvalSigningKey)}'
  APPROVAL_TTL_SECONDS: '300'
  // Empty: the page's URL is https://<WEBSITE_HOSTNAME>.
  APPROVAL_PUBLIC_URL: ''
  APPROVAL_SECOND_PERSON: approvalSecondPerson
  AUTH_ROLE_APPROVER: 'MCP.Approver'
  DESTRUCTIVE_TOOLS_DISABLED: destructiveToolsDisabled ? 'true' : 'false'
  DESTRUCTIVE_MAX_TARGETS_PER_CALL: '1000'
  DESTRUCTIVE_MAX_TARGETS_PER_TENANT_HOUR: '2000'
}, enableInboundEntraAuth ? {
  // Makes App Service authentication serve /.well-known/oauth-protected-resource for MCP clients.
  WEBSITE_AUTH_PRM_DEFAULT_WITH_SCOPES: '${inboundApp!.outputs.identifierUri}/user_impersonation'
} : {})

module handlerApp 'modules/flexapp.bicep' = {
  name: 'handler-app'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    planName: names.handlerPlan
    appName: names.handlerApp
    location: location
    tags: allTags
    runtimeName: 'custom'
    runtimeVersion: '1.0'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    identityId: identity.outputs.id
    packageContainerUrl: '${storage.outputs.blobEndpoint}${handlerPackageContainer}'
    subnetId: enablePrivateNetworking ? network!.outputs.handlerSubnetId : ''
    appSettings: handlerAppSettings
  }
}

module powerShellApp 'modules/flexapp.bicep' = {
  name: 'powershell-app'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    planName: names.powerShellPlan
    appName: names.powerShellApp
    location: location
    tags: allTags
    runtimeName: 'powerShell'
    runtimeVersion: '7.4'
    instanceMemoryMB: powerShellInstanceMemoryMB
    maximumInstanceCount: powerShellMaximumInstanceCount
    httpPerInstanceConcurrency: 0
    alwaysReadyHttpInstances: 0
    identityId: identity.outputs.id
    packageContainerUrl: '${storage.outputs.blobEndpoint}${powerShellPackageContainer}'
    subnetId: enablePrivateNetworking ? network!.outputs.powerShellSubnetId : ''
    appSettings: union(sharedAppSettings, powerShellExtraAppSettings)
  }
}

module inboundAuth 'modules/inbound-auth.bicep' = if (enableInboundEntraAuth) {
  name: 'inbound-auth'
  scope: rg
  params: {
    appName: handlerApp.outputs.name
    clientId: inboundApp!.outputs.clientId
    identifierUri: inboundApp!.outputs.identifierUri
    allowedClientAppIds: inboundAllowedClientAppIds
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment; scripts/deploy reads them)
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output HANDLER_APP_NAME string = handlerApp.outputs.name
output POWERSHELL_APP_NAME string = powerShellApp.outputs.name
output MCP_ENDPOINT string = 'https://${handlerApp.outputs.defaultHostName}/api/mcp'
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATION_INSIGHTS_NAME string = monitoring.outputs.appInsightsName
output INBOUND_APP_CLIENT_ID string = enableInboundEntraAuth ? inboundApp!.outputs.clientId : ''
