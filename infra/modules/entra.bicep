// The Entra app registration that represents the MCP endpoint for inbound auth: clients get a
// token for its user_impersonation scope, and App Service authentication (inbound-auth.bicep)
// accepts only those. Single-tenant: the people calling the server sign in to the MSSP's own tenant.
extension microsoftGraphV1

@description('Unique name of the app registration (stable across deployments, so redeploying updates it).')
param uniqueName string

@description('Display name shown in Entra and on consent screens.')
param displayName string

@description('Client applications pre-authorized for user_impersonation (no consent prompt).')
param allowedClientAppIds array

var scopeId = guid(uniqueName, 'user_impersonation')
var identifierUri = 'api://${uniqueName}'

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: scopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Use the Defender XDR and Sentinel MCP server'
        adminConsentDescription: 'Lets the application call the Defender XDR and Sentinel MCP server as the signed-in user.'
        userConsentDisplayName: 'Use the Defender XDR and Sentinel MCP server'
        userConsentDescription: 'Lets the application call the Defender XDR and Sentinel MCP server for you.'
      }
    ]
    preAuthorizedApplications: [
      for clientAppId in allowedClientAppIds: {
        appId: clientAppId
        delegatedPermissionIds: [
          scopeId
        ]
      }
    ]
  }
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

output clientId string = app.appId
output identifierUri string = identifierUri
