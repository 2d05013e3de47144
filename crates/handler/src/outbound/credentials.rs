//! One azure_identity credential per customer tenant, made on first use and kept for the
//! process lifetime. azure_identity caches each credential's tokens until shortly before they
//! expire, so a tenant's token is fetched once per scope and lifetime, not once per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    AsyncRawResponse, ClientMethodOptions, ClientOptions, Context, ExponentialRetryOptions,
    Request, RetryOptions, Transport,
};
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
            // The SDK's default makes up to 9 attempts over a minute; a tool call cannot wait that
            // long, and a token endpoint that fails three times in a few seconds is down.
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(300),
                max_retries: 2,
                max_total_elapsed: azure_core::time::Duration::seconds(8),
                max_delay: azure_core::time::Duration::seconds(2),
            }),
            per_call_policies: vec![Arc::new(TokenEndpointAnswer)],
            ..ClientOptions::default()
        };
        Self {
            auth,
            client_options,
            managed_identity: Mutex::new(None),
            by_tenant: Mutex::new(HashMap::new()),
        }
    }

    /// A bearer token for `scope` in `tenant`; a failure says what the token endpoint answered.
    pub async fn token(&self, tenant: &TenantId, scope: &str) -> Result<Secret, String> {
        let credential = self.for_tenant(tenant).map_err(|error| describe(&error))?;
        match credential.get_token(&[scope], None).await {
            Ok(token) => Ok(token.token),
            Err(error) => Err(describe(&error)),
        }
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

/// The identity library's message, then each cause it wraps that adds something (the HTTP status
/// Entra answered is in a cause, not in the top message).
fn describe(error: &azure_core::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !line.is_empty() && !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    if let Some(status) = answered_status(error)
        && !text.contains(&format!("HTTP {status}"))
    {
        text.push_str(&format!(
            " (the token endpoint answered HTTP {status} {})",
            status.canonical_reason()
        ));
    }
    text
}

fn answered_status(error: &azure_core::Error) -> Option<azure_core::http::StatusCode> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(azure) = cause.downcast_ref::<azure_core::Error>()
            && let ErrorKind::HttpResponse { status, .. } = azure.kind()
        {
            return Some(*status);
        }
        current = cause.source();
    }
    None
}

/// How much of a token endpoint's error body goes into the message.
const BODY_SHOWN: usize = 300;

/// Entra answers errors as JSON with an `error_description`, which the identity library reports.
/// Anything else (a gateway's 502/503 page, an empty body) makes the library report only that
/// the body was not JSON; this turns such an answer into an error naming the HTTP status. Runs
/// per call, after the retries, so only the last answer is judged.
#[derive(Debug)]
struct TokenEndpointAnswer;

#[async_trait::async_trait]
impl Policy for TokenEndpointAnswer {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((head, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "TokenEndpointAnswer must not be the last policy in the pipeline",
            ));
        };
        let response = head.send(ctx, request, rest).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (status, headers, body) = response.deconstruct();
        let bytes = body.collect().await?;
        let entra_error = serde_json::from_slice::<serde_json::Value>(&bytes)
            .is_ok_and(|value| value.get("error").is_some());
        if entra_error {
            return Ok(AsyncRawResponse::from_bytes(status, headers, bytes));
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown: String = text.chars().take(BODY_SHOWN).collect();
        let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status,
                error_code: None,
                raw_response: None,
            },
            if shown.is_empty() {
                format!(
                    "the token endpoint answered HTTP {status} {} with no error description",
                    status.canonical_reason()
                )
            } else {
                format!(
                    "the token endpoint answered HTTP {status} {}: {shown}",
                    status.canonical_reason()
                )
            },
        ))
    }
}
