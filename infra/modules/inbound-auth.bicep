// App Service authentication in front of the handler: a request without a valid Entra token for
// the MCP app registration gets 401 before it reaches the handler, and the 401 points MCP clients
// at the protected resource metadata. /api/health stays open for probes.

@description('Name of the handler Function App.')
param appName string

@description('Client id of the inbound app registration.')
param clientId string

@description('Identifier URI (token audience) of the inbound app registration.')
param identifierUri string

@description('Client applications whose tokens are accepted.')
param allowedClientAppIds array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      // The approval page signs people in itself: without a session it answers 401 with a link
      // to /.auth/login/aad, where App Service signs the person in and sends them back.
      excludedPaths: [
        '/api/health'
        '/api/approvals/*'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            identifierUri
            clientId
          ]
          defaultAuthorizationPolicy: {
            allowedApplications: allowedClientAppIds
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}
