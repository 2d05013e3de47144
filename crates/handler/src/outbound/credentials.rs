//! One azure_identity credential per customer tenant, made on first use and kept for the
//! process lifetime. azure_identity caches each credential's tokens until shortly before they
//! expire, so a tenant's token is fetched once per scope and lifetime, not once per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientMethodOptions, ClientOptions, Transport};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};

use crate::config::OutboundAuth;
use crate::tenants::TenantId;

/// The audience Entra expects for a managed identity token used as a federated client assertion.
const TOKEN_EXCHANGE_SCOPE: &str = "api://AzureADTokenExchange/.default";

pub struct Credentials {
    auth: OutboundAuth,
    client_options: ClientOptions,
    managed_identity: Mutex<Option<Arc<ManagedIdentityCredential>>>,
    by_tenant: Mutex<HashMap<TenantId, Arc<dyn TokenCredential>>>,
}

impl Credentials {
    pub fn new(auth: OutboundAuth, authority_host: &url::Url, transport: reqwest::Client) -> Self {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = authority_host.as_str().trim_end_matches('/').to_string();
        let client_options = ClientOptions {
            transport: Some(Transport::new(Arc::new(transport))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..ClientOptions::default()
        };
        Self {
            auth,
            client_options,
            managed_identity: Mutex::new(None),
            by_tenant: Mutex::new(HashMap::new()),
        }
    }

    /// A bearer token for `scope` in `tenant`.
    pub async fn token(&self, tenant: &TenantId, scope: &str) -> azure_core::Result<Secret> {
        let credential = self.for_tenant(tenant)?;
        Ok(credential.get_token(&[scope], None).await?.token)
    }

    fn for_tenant(&self, tenant: &TenantId) -> azure_core::Result<Arc<dyn TokenCredential>> {
        let mut cache = self
            .by_tenant
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = cache.get(tenant) {
            return Ok(existing.clone());
        }
        let credential: Arc<dyn TokenCredential> = match &self.auth {
            OutboundAuth::ClientSecret { client_id, secret } => ClientSecretCredential::new(
                tenant.as_str(),
                client_id.clone(),
                secret.clone(),
                Some(ClientSecretCredentialOptions {
                    client_options: self.client_options.clone(),
                }),
            )?,
            OutboundAuth::ManagedIdentityFederated {
                client_id,
                managed_identity_client_id,
            } => {
                let assertion = ManagedIdentityAssertion {
                    identity: self.managed_identity(managed_identity_client_id.as_deref())?,
                };
                ClientAssertionCredential::new(
                    tenant.as_str().to_string(),
                    client_id.clone(),
                    assertion,
                    Some(ClientAssertionCredentialOptions {
                        client_options: self.client_options.clone(),
                    }),
                )?
            }
        };
        cache.insert(tenant.clone(), credential.clone());
        Ok(credential)
    }

    fn managed_identity(
        &self,
        client_id: Option<&str>,
    ) -> azure_core::Result<Arc<ManagedIdentityCredential>> {
        let mut slot = self
            .managed_identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = slot.as_ref() {
            return Ok(existing.clone());
        }
        let identity = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_string())),
            client_options: self.client_options.clone(),
        }))?;
        *slot = Some(identity.clone());
        Ok(identity)
    }
}

/// The managed identity's own token (audience `api://AzureADTokenExchange`) is the client
/// assertion of the multi-tenant app registration: the app trusts the identity through a
/// federated credential, so no secret is stored anywhere.
#[derive(Debug)]
struct ManagedIdentityAssertion {
    identity: Arc<ManagedIdentityCredential>,
}

#[async_trait::async_trait]
impl ClientAssertion for ManagedIdentityAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        let token = self
            .identity
            .get_token(&[TOKEN_EXCHANGE_SCOPE], None)
            .await?;
        Ok(token.token.secret().to_string())
    }
}
