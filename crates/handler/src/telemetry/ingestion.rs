//! The HTTP client the Application Insights exporter sends through: the handler's own reqwest
//! settings (so an extra trusted CA applies here too), run on the tokio runtime, and Entra
//! authentication when the resource has local (instrumentation key) auth switched off.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

use super::TelemetryError;

/// The audience of Entra-authenticated Application Insights ingestion (the double slash is
/// part of the documented scope).
const MONITOR_SCOPE: &str = "https://monitor.azure.com//.default";
/// The exporter posts to `/v2/track`; Entra-authenticated ingestion is the `/v2.1/track` API.
const KEY_TRACK_PATH: &str = "/v2/track";
const ENTRA_TRACK_PATH: &str = "/v2.1/track";

/// How ingestion is authenticated, from `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`
/// (`Authorization=AAD;ClientId=<user-assigned identity client id>`, the form the Functions
/// host reads too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestionAuth {
    /// The instrumentation key in the connection string is enough (local auth on).
    InstrumentationKey,
    /// An Entra token of the managed identity; `None` is the system-assigned identity.
    Entra { client_id: Option<String> },
}

impl IngestionAuth {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
            return Ok(Self::InstrumentationKey);
        };
        let mut authorization = None;
        let mut client_id = None;
        for part in value
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((key, field)) = part.split_once('=') else {
                return Err(format!(
                    "'{part}' is not key=value; expected Authorization=AAD;ClientId=<client id>"
                ));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(field.trim().to_string()),
                "clientid" => {
                    client_id = Some(field.trim().to_string()).filter(|id| !id.is_empty())
                }
                other => {
                    return Err(format!(
                        "unknown key '{other}'; expected Authorization=AAD;ClientId=<client id>"
                    ));
                }
            }
        }
        match authorization.as_deref() {
            Some(kind) if kind.eq_ignore_ascii_case("aad") => Ok(Self::Entra { client_id }),
            _ => Err("Authorization=AAD is the only accepted form (with an optional ClientId=<client id>)".to_string()),
        }
    }
}

#[derive(Clone)]
pub(super) struct IngestionClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    credential: Option<Arc<dyn TokenCredential>>,
}

impl std::fmt::Debug for IngestionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestionClient")
            .field("entra", &self.credential.is_some())
            .finish_non_exhaustive()
    }
}

impl IngestionClient {
    /// `http`: the process's outbound client (its CA and timeouts), which the caller builds.
    pub(super) fn new(http: reqwest::Client, auth: IngestionAuth) -> Result<Self, TelemetryError> {
        let credential: Option<Arc<dyn TokenCredential>> = match auth {
            IngestionAuth::InstrumentationKey => None,
            IngestionAuth::Entra { client_id } => Some(
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.map(UserAssignedId::ClientId),
                    client_options: ClientOptions {
                        transport: Some(Transport::new(Arc::new(http.clone()))),
                        ..Default::default()
                    },
                }))
                .map_err(|error| TelemetryError::Client(error.to_string()))?,
            ),
        };
        Self::from_parts(http, credential)
    }

    fn from_parts(
        http: reqwest::Client,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TelemetryError::Client("telemetry must be started inside the tokio runtime".into())
        })?;
        Ok(Self {
            http,
            runtime,
            credential,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for IngestionClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let credential = self.credential.clone();
        // The SDK exports from its own threads, outside any runtime; reqwest needs tokio's.
        self.runtime.spawn(send(http, credential, request)).await?
    }
}

async fn send(
    http: reqwest::Client,
    credential: Option<Arc<dyn TokenCredential>>,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = request.into_parts();
    let mut url = url::Url::parse(&parts.uri.to_string())?;
    let token = match credential {
        None => None,
        Some(credential) => {
            if let Some(prefix) = url.path().strip_suffix(KEY_TRACK_PATH) {
                let path = format!("{prefix}{ENTRA_TRACK_PATH}");
                url.set_path(&path);
            }
            Some(credential.get_token(&[MONITOR_SCOPE], None).await?.token)
        }
    };
    let mut builder = http
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body);
    if let Some(token) = token {
        builder = builder.bearer_auth(token.secret());
    }
    let response = builder.send().await?;
    let mut answer = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    Ok(answer.body(response.bytes().await?)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};
    use azure_core::credentials::{AccessToken, TokenRequestOptions};

    use super::*;

    #[test]
    fn authentication_strings() {
        assert_eq!(
            IngestionAuth::parse(None),
            Ok(IngestionAuth::InstrumentationKey)
        );
        assert_eq!(
            IngestionAuth::parse(Some("  ")),
            Ok(IngestionAuth::InstrumentationKey)
        );
        assert_eq!(
            IngestionAuth::parse(Some("ClientId=abc;Authorization=AAD")),
            Ok(IngestionAuth::Entra {
                client_id: Some("abc".into())
            })
        );
        assert_eq!(
            IngestionAuth::parse(Some("Authorization=aad")),
            Ok(IngestionAuth::Entra { client_id: None })
        );
        for bad in [
            "Authorization=ikey",
            "ClientId=abc",
            "Authorization",
            "Authorization=AAD;Secret=x",
        ] {
            let error = IngestionAuth::parse(Some(bad)).expect_err(bad);
            assert!(error.contains("Authorization=AAD"), "{bad}: {error}");
        }
    }

    #[derive(Debug, Default)]
    struct FixedToken {
        scopes: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl TokenCredential for FixedToken {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.scopes
                .lock()
                .unwrap()
                .extend(scopes.iter().map(|s| s.to_string()));
            Ok(AccessToken::new(
                "entra-token",
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }
    }

    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    async fn record(State(seen): State<Seen>, uri: Uri, headers: HeaderMap) -> &'static str {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        seen.lock()
            .unwrap()
            .push((uri.path().to_string(), authorization));
        "{}"
    }

    async fn post(client: &IngestionClient, url: &str) -> u16 {
        let request = Request::post(url).body(Bytes::from_static(b"[]")).unwrap();
        client
            .send_bytes(request)
            .await
            .expect("sent")
            .status()
            .as_u16()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entra_ingestion_sends_a_monitor_token_to_the_v2_1_api() {
        let seen = Seen::default();
        let router = axum::Router::new()
            .fallback(record)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/track", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let credential = Arc::new(FixedToken::default());
        let entra =
            IngestionClient::from_parts(reqwest::Client::new(), Some(credential.clone())).unwrap();
        assert_eq!(post(&entra, &url).await, 200);
        let key = IngestionClient::from_parts(reqwest::Client::new(), None).unwrap();
        assert_eq!(post(&key, &url).await, 200);

        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0],
            (
                "/v2.1/track".to_string(),
                Some("Bearer entra-token".to_string())
            )
        );
        assert_eq!(seen[1], ("/v2/track".to_string(), None));
        assert_eq!(
            *credential.scopes.lock().unwrap(),
            vec![MONITOR_SCOPE.to_string()]
        );
    }
}
