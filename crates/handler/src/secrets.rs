//! App settings whose value names a Key Vault secret instead of holding it.
//!
//! Two forms are understood:
//! - `@Microsoft.KeyVault(...)`: resolved by the Functions platform before the handler starts
//!   (the Bicep uses it for `AZURE_CLIENT_SECRET`). If the handler still sees one, the platform
//!   could not resolve it; starting anyway would send the reference text as a password, so start
//!   stops with the reason instead.
//! - `keyvault:<secret-name>`: resolved here, once at start, from the vault in `KEY_VAULT_URL`
//!   with the app's managed identity, over the same HTTP client settings as every other outbound
//!   call. The values are kept in memory for the process lifetime (a restart picks up a rotated
//!   secret) and are never logged: only setting and secret names are.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::Secret;
use azure_core::http::{ClientOptions, StatusCode, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

use crate::config::settings;
use crate::outbound::HttpCoreError;

/// A setting value of this form names a secret in the `KEY_VAULT_URL` vault.
pub const REFERENCE_PREFIX: &str = "keyvault:";
const PLATFORM_REFERENCE_PREFIX: &str = "@Microsoft.KeyVault(";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "app setting {setting} still holds an @Microsoft.KeyVault(...) reference: the platform could not resolve it. \
         Check the reference's status under Environment variables in the portal, that the app's keyVaultReferenceIdentity \
         has Key Vault Secrets User on the vault, and that the secret exists"
    )]
    UnresolvedPlatformReference { setting: &'static str },
    #[error(
        "app setting {setting} names Key Vault secret '{secret}', but {vault_setting} is not set; set it to the vault's URL \
         (https://<vault>.vault.azure.net/)",
        vault_setting = settings::KEY_VAULT_URL
    )]
    NoVault {
        setting: &'static str,
        secret: String,
    },
    #[error(
        "app setting {setting}: '{secret}' is not a Key Vault secret name (1-127 letters, digits and dashes)"
    )]
    BadName {
        setting: &'static str,
        secret: String,
    },
    #[error("app setting {vault_setting} has an invalid value: {reason}", vault_setting = settings::KEY_VAULT_URL)]
    VaultUrl { reason: String },
    #[error("app setting {setting}: Key Vault secret '{secret}' could not be read: {reason}")]
    Read {
        setting: &'static str,
        secret: String,
        reason: String,
    },
    #[error("the HTTP client for Key Vault: {0}")]
    Transport(#[from] HttpCoreError),
}

/// Setting values read from Key Vault, by setting name.
#[derive(Default)]
pub struct ResolvedSecrets {
    values: HashMap<&'static str, Secret>,
}

impl std::fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl ResolvedSecrets {
    /// The resolved value of `setting`, if it was a `keyvault:` reference.
    pub fn get(&self, setting: &str) -> Option<String> {
        self.values
            .get(setting)
            .map(|secret| secret.secret().to_string())
    }
}

/// Resolves every setting in [`settings::ALL`] whose value is a `keyvault:` reference. Nothing is
/// built or fetched when none is, so a deployment without references pays nothing at start.
/// `transport` is called only when some setting names a secret: building an HTTP client loads the
/// trusted roots (milliseconds a start without references does not need to spend).
pub async fn resolve(
    lookup: impl Fn(&str) -> Option<String>,
    transport: impl FnOnce() -> Result<reqwest::Client, HttpCoreError>,
) -> Result<ResolvedSecrets, SecretError> {
    let mut references = Vec::new();
    for &setting in settings::ALL {
        let Some(value) = lookup(setting) else {
            continue;
        };
        let value = value.trim();
        if value.starts_with(PLATFORM_REFERENCE_PREFIX) {
            return Err(SecretError::UnresolvedPlatformReference { setting });
        }
        if let Some(secret) = value.strip_prefix(REFERENCE_PREFIX) {
            let secret = secret.trim().to_string();
            if !is_secret_name(&secret) {
                return Err(SecretError::BadName { setting, secret });
            }
            references.push((setting, secret));
        }
    }
    let Some((first_setting, first_secret)) = references.first() else {
        return Ok(ResolvedSecrets::default());
    };
    let Some(vault_url) = lookup(settings::KEY_VAULT_URL) else {
        return Err(SecretError::NoVault {
            setting: first_setting,
            secret: first_secret.clone(),
        });
    };
    let client = vault_client(
        &vault_url,
        lookup(settings::MANAGED_IDENTITY_CLIENT_ID),
        transport()?,
    )?;

    // One read per distinct secret, however many settings name it.
    let mut fetched: HashMap<String, Secret> = HashMap::new();
    let mut values = HashMap::new();
    for (setting, secret) in references {
        let value = match fetched.get(&secret) {
            Some(value) => value.clone(),
            None => {
                let value = read(&client, setting, &secret).await?;
                fetched.insert(secret.clone(), value.clone());
                value
            }
        };
        tracing::info!(setting, secret = %secret, "app setting resolved from Key Vault");
        values.insert(setting, value);
    }
    Ok(ResolvedSecrets { values })
}

fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn vault_client(
    vault_url: &str,
    identity_client_id: Option<String>,
    transport: reqwest::Client,
) -> Result<SecretClient, SecretError> {
    let url = url::Url::parse(vault_url.trim()).map_err(|error| SecretError::VaultUrl {
        reason: format!("'{vault_url}' is not a URL ({error})"),
    })?;
    if url.scheme() != "https" {
        return Err(SecretError::VaultUrl {
            reason: format!("'{vault_url}' must use https"),
        });
    }
    let client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(transport))),
        ..ClientOptions::default()
    };
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: identity_client_id.map(UserAssignedId::ClientId),
        client_options: client_options.clone(),
    }))
    .map_err(|error| SecretError::VaultUrl {
        reason: format!("the managed identity credential cannot be built: {error}"),
    })?;
    SecretClient::new(
        url.as_str(),
        credential,
        Some(SecretClientOptions {
            client_options,
            ..Default::default()
        }),
    )
    .map_err(|error| SecretError::VaultUrl {
        reason: error.to_string(),
    })
}

async fn read(
    client: &SecretClient,
    setting: &'static str,
    secret: &str,
) -> Result<Secret, SecretError> {
    let failed = |reason: String| SecretError::Read {
        setting,
        secret: secret.to_string(),
        reason,
    };
    let response = client.get_secret(secret, None).await.map_err(|error| {
        failed(match error.http_status() {
            Some(StatusCode::NotFound) => "the vault has no such secret (or it is disabled)".to_string(),
            Some(StatusCode::Forbidden) => {
                "the vault refused the app's identity: it needs Key Vault Secrets User on the vault, and the vault's \
                 network rules must let the app in"
                    .to_string()
            }
            _ => error.to_string(),
        })
    })?;
    let model = response
        .into_model()
        .map_err(|error| failed(format!("the vault's answer could not be read: {error}")))?;
    model
        .value
        .map(Secret::new)
        .ok_or_else(|| failed("the secret has no value".to_string()))
}
