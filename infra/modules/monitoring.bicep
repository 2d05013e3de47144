// Log Analytics (new or existing) and a workspace-based Application Insights with local
// (instrumentation key) authentication switched off: only Entra-authenticated telemetry is
// accepted, so a leaked connection string cannot be used to write fake telemetry.

@description('Name of the workspace to create when existingWorkspaceId is empty.')
param logAnalyticsName string

@description('Name of the Application Insights resource.')
param appInsightsName string

@description('Azure region.')
param location string

@description('Tags.')
param tags object

@description('Resource id of an existing workspace; empty creates one.')
param existingWorkspaceId string

@description('Retention in days of a created workspace.')
param retentionInDays int

@description('Daily ingestion cap in GB of a created workspace; -1 for none.')
param dailyQuotaGb int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (empty(existingWorkspaceId)) {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: dailyQuotaGb
    }
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: empty(existingWorkspaceId) ? workspace.id : existingWorkspaceId
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
// Not a secret with local auth off: it only says where to send telemetry, and sending needs a token.
output connectionString string = appInsights.properties.ConnectionString
