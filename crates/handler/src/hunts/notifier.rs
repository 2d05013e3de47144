//! Alert notifications: a JSON post to a webhook (Teams Workflows, Logic App or any HTTP trigger)
//! whose URL is a secret. Definitions hold only the secret's name; the URL is resolved at send
//! time through a [`SecretResolver`] and never logged, stored or returned.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::Secret;
use serde_json::{Value, json};
use url::Url;

use super::run::RunRecord;
use super::{format_time, resource_uri};

/// Where named secrets come from: app settings now, Key Vault when that is plugged in.
#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync {
    /// The secret's value. Errors say what was looked up and where, never the value.
    async fn resolve(&self, name: &str) -> Result<Secret, SecretError>;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Secrets from app settings: secret `soc-teams-webhook` is the setting
/// `HUNT_SECRET_SOC_TEAMS_WEBHOOK`. In Azure the setting can be a Key Vault reference.
pub struct AppSettingSecrets {
    lookup: Arc<SettingLookup>,
}

type SettingLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl AppSettingSecrets {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    pub fn from_env() -> Self {
        Self::new(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    }

    pub fn setting_name(secret: &str) -> String {
        format!(
            "{}{}",
            crate::config::settings::HUNT_SECRET_PREFIX,
            secret.to_ascii_uppercase().replace('-', "_")
        )
    }
}

#[async_trait::async_trait]
impl SecretResolver for AppSettingSecrets {
    async fn resolve(&self, name: &str) -> Result<Secret, SecretError> {
        let setting = Self::setting_name(name);
        (self.lookup)(&setting).map(Secret::from).ok_or_else(|| {
            SecretError(format!(
                "secret '{name}' is not configured (app setting {setting} is empty or missing)"
            ))
        })
    }
}

/// Posts alert payloads.
pub struct Notifier {
    client: reqwest::Client,
    secrets: Arc<dyn SecretResolver>,
}

const POST_TIMEOUT: Duration = Duration::from_secs(15);

impl Notifier {
    pub fn new(client: reqwest::Client, secrets: Arc<dyn SecretResolver>) -> Self {
        Self { client, secrets }
    }

    /// Posts once. It is repeated only when the connection was refused (the webhook certainly got
    /// nothing), since a second post after a lost answer would be a duplicate alert in a channel.
    pub async fn post(&self, secret_name: &str, payload: &Value) -> Result<(), String> {
        let secret = self
            .secrets
            .resolve(secret_name)
            .await
            .map_err(|error| error.to_string())?;
        let url = webhook_url(secret.secret()).map_err(|reason| {
            format!("secret '{secret_name}' does not hold a usable webhook URL: {reason}")
        })?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = self
                .client
                .post(url.clone())
                .timeout(POST_TIMEOUT)
                .json(payload)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    return Err(format!(
                        "the webhook (secret '{secret_name}') answered HTTP {status}"
                    ));
                }
                Err(error) if error.is_connect() && attempts < 2 => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    return Err(format!(
                        "the webhook (secret '{secret_name}') could not be reached: {}",
                        crate::outbound::without_url(&error)
                    ));
                }
            }
        }
    }
}

/// https anywhere; plain http only on loopback (a local receiver while developing).
fn webhook_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|error| format!("not a URL ({error})"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        other => Err(format!("scheme '{other}' is not accepted; use https")),
    }
}

/// The alert as a Teams message with an Adaptive Card (what Teams Workflows webhooks post to a
/// channel), plus the same facts as plain JSON under `hunt` for Logic Apps and other receivers.
pub fn alert_payload(record: &RunRecord, reason: &str) -> Value {
    let uri = resource_uri(&record.hunt_id, &record.run_id);
    let window = match (record.window_start, record.window_end) {
        (Some(start), Some(end)) => format!("{} to {}", format_time(start), format_time(end)),
        _ => "unknown".into(),
    };
    let mut facts = vec![
        json!({"title": "Hunt", "value": format!("{} ({})", record.hunt_name, record.hunt_id)}),
        json!({"title": "Run", "value": format!("{} ({:?})", record.run_id, record.kind)}),
        json!({"title": "Window (UTC)", "value": window}),
        json!({"title": "Rows", "value": record.rows_total.to_string()}),
    ];
    facts.extend(record.tenants.iter().map(|tenant| {
        let value = match (tenant.rows, &tenant.error) {
            (Some(rows), _) => format!(
                "{rows} rows{}",
                if tenant.truncated { " (truncated)" } else { "" }
            ),
            (None, Some(error)) => format!("failed: {error}"),
            (None, None) => "not searched".into(),
        };
        json!({"title": tenant.tenant_id.to_string(), "value": value})
    }));
    let title = format!(
        "Hunt '{}' found {} rows",
        record.hunt_name, record.rows_total
    );
    json!({
        "type": "message",
        "summary": title,
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": title, "wrap": true},
                    {"type": "TextBlock", "text": format!("Alert rule met: {reason}"), "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": format!("Results: {uri} (MCP resource), or hunt_get_results with hunt_id {} and run_id {}", record.hunt_id, record.run_id), "wrap": true, "isSubtle": true}
                ]
            }
        }],
        "hunt": {
            "hunt_id": record.hunt_id,
            "hunt_name": record.hunt_name,
            "run_id": record.run_id,
            "kind": record.kind,
            "status": record.status,
            "resource": uri,
            "reason": reason,
            "window_start": record.window_start.map(format_time),
            "window_end": record.window_end.map(format_time),
            "rows_total": record.rows_total,
            "tenants": record.tenants.iter().map(|t| json!({
                "tenant_id": t.tenant_id, "status": t.status, "rows": t.rows, "truncated": t.truncated, "error": t.error
            })).collect::<Vec<_>>(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_come_from_their_app_setting_and_missing_ones_are_named() {
        let secrets = AppSettingSecrets::new(|name| {
            (name == "HUNT_SECRET_SOC_TEAMS").then(|| "https://example.test/hook".to_string())
        });
        assert_eq!(
            secrets
                .resolve("soc-teams")
                .await
                .expect("configured")
                .secret(),
            "https://example.test/hook"
        );
        let missing = secrets
            .resolve("other")
            .await
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("HUNT_SECRET_OTHER"), "{missing}");
    }

    #[test]
    fn webhooks_must_be_https_except_on_loopback() {
        assert!(webhook_url("https://prod-00.westeurope.logic.azure.com/workflows/x").is_ok());
        assert!(webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(webhook_url("http://example.com/hook").is_err());
        assert!(webhook_url("not a url").is_err());
    }
}
