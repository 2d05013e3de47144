//! Where storage lives and how to authenticate to it, from the Azure Functions settings convention.
//!
//! Two shapes are accepted, mirroring what the Functions host itself accepts for
//! `AzureWebJobsStorage`:
//! - a connection string in `<prefix>` (`UseDevelopmentStorage=true`, or
//!   `DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...[;BlobEndpoint=...;QueueEndpoint=...]`),
//!   authenticated with Shared Key;
//! - identity-based settings `<prefix>__blobServiceUri`, `<prefix>__queueServiceUri` (or
//!   `<prefix>__accountName`), `<prefix>__credential=managedidentity`, `<prefix>__clientId`,
//!   authenticated with a managed identity.
//!
//! The connection-string parser is hand-written because the 1.x storage crates have none.

use std::{collections::HashMap, fmt};

use url::Url;

use super::{StorageError, shared_key::AccountKey};

/// Azurite's well-known development account (the same public values every Azure SDK hard-codes
/// for `UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
const DEV_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";
const DEFAULT_ENDPOINT_SUFFIX: &str = "core.windows.net";

/// How to reach the storage account's blob and queue services.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConnection {
    /// Account key auth (Azurite, or an account whose key is in the connection string).
    SharedKey {
        account: String,
        key: AccountKey,
        blob_endpoint: Url,
        queue_endpoint: Url,
    },
    /// Entra ID auth through the app's managed identity; endpoints are always https.
    Identity {
        blob_endpoint: Url,
        queue_endpoint: Url,
        /// Client id of a user-assigned identity; `None` means the system-assigned identity.
        client_id: Option<String>,
    },
}

impl StorageConnection {
    /// From the Functions convention: the `AzureWebJobsStorage` value, or the `AzureWebJobsStorage__*` identity settings.
    /// `lookup` returns an app setting's value by name (so tests need not touch the process env).
    ///
    /// A non-empty `<prefix>` value wins over identity settings, as it does for the Functions host.
    pub fn from_settings(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StorageError> {
        let setting = |suffix: &str| -> Option<(String, String)> {
            let name = if suffix.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}__{suffix}")
            };
            lookup(&name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .map(|value| (name, value))
        };

        if let Some((_, value)) = setting("") {
            return Self::from_connection_string(&value);
        }

        let blob_uri = setting("blobServiceUri");
        let queue_uri = setting("queueServiceUri");
        let account_name = setting("accountName");
        if blob_uri.is_none() && queue_uri.is_none() && account_name.is_none() {
            return Err(StorageError::MissingSetting {
                name: format!(
                    "{prefix} (a connection string), or {prefix}__blobServiceUri and \
                     {prefix}__queueServiceUri (managed identity)"
                ),
            });
        }

        if let Some((name, credential)) = setting("credential") {
            // "managedidentity" is the only value the Functions host documents; anything else would
            // silently authenticate differently from the host, so refuse it.
            if !credential.eq_ignore_ascii_case("managedidentity") {
                return Err(StorageError::InvalidSetting {
                    name,
                    reason: format!("expected \"managedidentity\", found \"{credential}\""),
                });
            }
        }

        let derived = |service: &str| -> Result<Option<Url>, StorageError> {
            account_name
                .as_ref()
                .map(|(name, account)| {
                    validate_account_name(account).map_err(|reason| {
                        StorageError::InvalidSetting {
                            name: name.clone(),
                            reason,
                        }
                    })?;
                    let raw = format!("https://{account}.{service}.{DEFAULT_ENDPOINT_SUFFIX}");
                    parse_endpoint(&raw).map_err(|reason| StorageError::InvalidSetting {
                        name: name.clone(),
                        reason,
                    })
                })
                .transpose()
        };
        let identity_endpoint = |explicit: Option<(String, String)>,
                                 service: &str,
                                 suffix: &str|
         -> Result<Url, StorageError> {
            let url = match explicit {
                Some((name, raw)) => {
                    let url =
                        parse_endpoint(&raw).map_err(|reason| StorageError::InvalidSetting {
                            name: name.clone(),
                            reason,
                        })?;
                    // The SDK refuses to send bearer tokens over plain http; fail at startup
                    // with the setting's name instead of on the first request.
                    if url.scheme() != "https" {
                        return Err(StorageError::InvalidSetting {
                            name,
                            reason: "managed identity requires an https endpoint".to_owned(),
                        });
                    }
                    url
                }
                None => derived(service)?.ok_or_else(|| StorageError::MissingSetting {
                    name: format!("{prefix}__{suffix} (or {prefix}__accountName)"),
                })?,
            };
            Ok(url)
        };

        let blob_endpoint = identity_endpoint(blob_uri, "blob", "blobServiceUri")?;
        let queue_endpoint = identity_endpoint(queue_uri, "queue", "queueServiceUri")?;
        let client_id = setting("clientId").map(|(_, value)| value);
        Ok(Self::Identity {
            blob_endpoint,
            queue_endpoint,
            client_id,
        })
    }

    /// Parses a storage connection string (`UseDevelopmentStorage=true` or an account-key string).
    pub fn from_connection_string(connection_string: &str) -> Result<Self, StorageError> {
        let pairs = parse_pairs(connection_string)?;
        let get = |key: &str| pairs.get(key).map(String::as_str);

        if let Some(dev) = get("usedevelopmentstorage") {
            if !dev.eq_ignore_ascii_case("true") {
                return Err(invalid(format!(
                    "UseDevelopmentStorage must be \"true\", found \"{dev}\""
                )));
            }
            if get("developmentstorageproxyuri").is_some() {
                return Err(invalid(
                    "DevelopmentStorageProxyUri is not supported; give explicit BlobEndpoint and \
                     QueueEndpoint instead",
                ));
            }
            return Ok(Self::SharedKey {
                account: DEV_ACCOUNT.to_owned(),
                key: AccountKey::from_base64(DEV_KEY)?,
                blob_endpoint: parse_endpoint(DEV_BLOB_ENDPOINT).map_err(invalid)?,
                queue_endpoint: parse_endpoint(DEV_QUEUE_ENDPOINT).map_err(invalid)?,
            });
        }

        if get("sharedaccesssignature").is_some() {
            return Err(invalid(
                "SharedAccessSignature connection strings are not supported; use AccountName + \
                 AccountKey, or managed identity settings",
            ));
        }

        let account = get("accountname").ok_or_else(|| invalid("AccountName is missing"))?;
        validate_account_name(account)
            .map_err(|reason| invalid(format!("AccountName: {reason}")))?;
        let key = AccountKey::from_base64(
            get("accountkey").ok_or_else(|| invalid("AccountKey is missing"))?,
        )?;

        let protocol = match get("defaultendpointsprotocol") {
            None => "https",
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            Some(p) => {
                return Err(invalid(format!(
                    "DefaultEndpointsProtocol must be http or https, found \"{p}\""
                )));
            }
        };
        let suffix = get("endpointsuffix").unwrap_or(DEFAULT_ENDPOINT_SUFFIX);

        let (blob_endpoint, queue_endpoint) = match (get("blobendpoint"), get("queueendpoint")) {
            (Some(blob), Some(queue)) => (
                parse_endpoint(blob).map_err(|r| invalid(format!("BlobEndpoint: {r}")))?,
                parse_endpoint(queue).map_err(|r| invalid(format!("QueueEndpoint: {r}")))?,
            ),
            (None, None) => (
                parse_endpoint(&format!("{protocol}://{account}.blob.{suffix}"))
                    .map_err(|r| invalid(format!("EndpointSuffix: {r}")))?,
                parse_endpoint(&format!("{protocol}://{account}.queue.{suffix}"))
                    .map_err(|r| invalid(format!("EndpointSuffix: {r}")))?,
            ),
            // Deriving the missing one from AccountName would silently point an emulator setup at
            // the public cloud; both services are needed, so ask for both.
            (Some(_), None) => {
                return Err(invalid(
                    "BlobEndpoint is set but QueueEndpoint is not; set both or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "QueueEndpoint is set but BlobEndpoint is not; set both or neither",
                ));
            }
        };

        Ok(Self::SharedKey {
            account: account.to_owned(),
            key,
            blob_endpoint,
            queue_endpoint,
        })
    }

    /// For logs: account + endpoints + auth kind, never the key.
    pub fn describe(&self) -> String {
        match self {
            Self::SharedKey {
                account,
                blob_endpoint,
                queue_endpoint,
                ..
            } => format!(
                "storage account {account} (blob {blob_endpoint}, queue {queue_endpoint}, auth: shared key)"
            ),
            Self::Identity {
                blob_endpoint,
                queue_endpoint,
                client_id,
            } => {
                let account = blob_endpoint
                    .host_str()
                    .and_then(|host| host.split('.').next())
                    .unwrap_or("?");
                let identity = match client_id {
                    Some(id) => format!("user-assigned managed identity {id}"),
                    None => "system-assigned managed identity".to_owned(),
                };
                format!(
                    "storage account {account} (blob {blob_endpoint}, queue {queue_endpoint}, auth: {identity})"
                )
            }
        }
    }

    pub fn blob_endpoint(&self) -> &Url {
        match self {
            Self::SharedKey { blob_endpoint, .. } | Self::Identity { blob_endpoint, .. } => {
                blob_endpoint
            }
        }
    }

    pub fn queue_endpoint(&self) -> &Url {
        match self {
            Self::SharedKey { queue_endpoint, .. } | Self::Identity { queue_endpoint, .. } => {
                queue_endpoint
            }
        }
    }
}

impl fmt::Debug for StorageConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written so a future field holding a secret cannot leak through a derive.
        f.write_str(&self.describe())
    }
}

fn invalid(reason: impl Into<String>) -> StorageError {
    StorageError::InvalidConnectionString {
        reason: reason.into(),
    }
}

/// Splits `Key=Value;Key=Value` into a map keyed by lowercased key.
///
/// Values may contain `=` (base64 keys end in `==`), so only the first `=` separates. Error
/// messages name keys and positions but never echo a value or a malformed segment, since either
/// could be (part of) the account key.
fn parse_pairs(connection_string: &str) -> Result<HashMap<String, String>, StorageError> {
    let mut pairs = HashMap::new();
    for (index, segment) in connection_string.split(';').enumerate() {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let Some((key, value)) = segment.split_once('=') else {
            return Err(invalid(format!(
                "segment {} is not a Key=Value pair",
                index + 1
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid(format!("segment {} has an empty key", index + 1)));
        }
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid(format!("{key} has an empty value")));
        }
        if pairs
            .insert(key.to_ascii_lowercase(), value.to_owned())
            .is_some()
        {
            return Err(invalid(format!("{key} is given more than once")));
        }
    }
    if pairs.is_empty() {
        return Err(invalid("it is empty"));
    }
    Ok(pairs)
}

/// Parses a service endpoint and normalises away a trailing slash, so that appending a container
/// or queue name yields `/account/container` rather than `/account//container`.
fn parse_endpoint(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    // Echo at most scheme://host/path: a query would be a SAS token, userinfo a password.
    let shown = raw.split(['?', '#']).next().unwrap_or_default();
    let shown = match shown.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => shown.to_owned(),
        },
        None => shown.to_owned(),
    };
    let url = Url::parse(raw).map_err(|e| format!("\"{shown}\" is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("\"{shown}\" must use http or https"));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(format!("\"{shown}\" is not a base URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        // Almost always a SAS token pasted into the endpoint.
        return Err(format!("\"{shown}\" must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("\"{shown}\" must not contain credentials"));
    }
    Ok(without_trailing_slash(&url))
}

/// Appending a container or queue name to `.../account/` would give `.../account//name`.
pub(super) fn without_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    url
}

/// Storage account names: 3-24 lowercase letters and digits. Checked up front because the name
/// ends up in hostnames and in the signed canonical resource, where mistakes surface as opaque
/// DNS or 403 errors.
fn validate_account_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=24).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a storage account name (3-24 lowercase letters and digits)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn reason(err: StorageError) -> String {
        match err {
            StorageError::InvalidConnectionString { reason } => reason,
            other => panic!("expected InvalidConnectionString, got {other:?}"),
        }
    }

    #[test]
    fn development_storage_uses_azurite_defaults() {
        let conn = StorageConnection::from_connection_string("UseDevelopmentStorage=true").unwrap();
        let StorageConnection::SharedKey {
            account,
            key,
            blob_endpoint,
            queue_endpoint,
        } = &conn
        else {
            panic!("expected SharedKey, got {conn:?}");
        };
        assert_eq!(account, "devstoreaccount1");
        assert_eq!(key, &AccountKey::from_base64(KEY).unwrap());
        assert_eq!(
            blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        // Case-insensitive keys and values, trailing separator tolerated.
        assert_eq!(
            StorageConnection::from_connection_string(" usedevelopmentstorage = TRUE ; ").unwrap(),
            conn
        );
    }

    #[test]
    fn explicit_azurite_connection_string() {
        let cs = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
        );
        let conn = StorageConnection::from_connection_string(&cs).unwrap();
        assert_eq!(
            conn,
            StorageConnection::from_connection_string("UseDevelopmentStorage=true").unwrap(),
            "trailing slash on an endpoint is normalised away"
        );
    }

    #[test]
    fn account_key_string_derives_cloud_endpoints() {
        let cs = format!(
            "DefaultEndpointsProtocol=https;AccountName=mystore01;AccountKey={KEY};EndpointSuffix=core.usgovcloudapi.net"
        );
        let conn = StorageConnection::from_connection_string(&cs).unwrap();
        assert_eq!(
            conn.blob_endpoint().as_str(),
            "https://mystore01.blob.core.usgovcloudapi.net/"
        );
        assert_eq!(
            conn.queue_endpoint().as_str(),
            "https://mystore01.queue.core.usgovcloudapi.net/"
        );
        // Protocol and suffix default to https + public cloud.
        let conn = StorageConnection::from_connection_string(&format!(
            "AccountName=mystore01;AccountKey={KEY}"
        ))
        .unwrap();
        assert_eq!(
            conn.blob_endpoint().as_str(),
            "https://mystore01.blob.core.windows.net/"
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("AccountName=abc", "AccountKey is missing"),
            ("AccountKey=AAAA", "AccountName is missing"),
            (
                "UseDevelopmentStorage=false",
                "UseDevelopmentStorage must be \"true\"",
            ),
            (
                "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x",
                "DevelopmentStorageProxyUri is not supported",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;AccountName=def",
                "AccountName is given more than once",
            ),
            (
                "AccountName=abc;garbage",
                "segment 2 is not a Key=Value pair",
            ),
            (
                "AccountName=abc;AccountKey=",
                "AccountKey has an empty value",
            ),
            (
                "AccountName=Bad_Name;AccountKey=AAAA",
                "AccountName: \"Bad_Name\" is not a storage account name",
            ),
            (
                "AccountName=abc;AccountKey=%%%%",
                "AccountKey is not valid base64",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;DefaultEndpointsProtocol=ftp",
                "DefaultEndpointsProtocol must be http or https",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;BlobEndpoint=http://127.0.0.1:10000/abc",
                "QueueEndpoint is not",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;QueueEndpoint=http://127.0.0.1:10001/abc",
                "BlobEndpoint is not",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;BlobEndpoint=not a url;QueueEndpoint=http://h/abc",
                "BlobEndpoint: \"not a url\" is not a valid URL",
            ),
            (
                "AccountName=abc;AccountKey=AAAA;BlobEndpoint=http://h/abc?sv=1&sig=secret;QueueEndpoint=http://h/abc",
                "must not have a query",
            ),
            (
                "SharedAccessSignature=sv=2020&sig=abc;BlobEndpoint=https://a.blob.core.windows.net",
                "SharedAccessSignature connection strings are not supported",
            ),
        ];
        for (cs, expected) in cases {
            let got = reason(StorageConnection::from_connection_string(cs).unwrap_err());
            assert!(
                got.contains(expected),
                "for {cs:?}: expected {expected:?} in {got:?}"
            );
        }
    }

    #[test]
    fn errors_never_echo_the_key() {
        // A key pasted without its "AccountKey=" prefix is a malformed segment: not echoed.
        let err =
            StorageConnection::from_connection_string(&format!("AccountName=abc;{KEY}x=y;=z"))
                .unwrap_err();
        assert!(!err.to_string().contains("Eby8"), "{err}");
        let err = StorageConnection::from_connection_string("AccountName=abc;AccountKey=Eby8!!")
            .unwrap_err();
        assert!(!err.to_string().contains("Eby8"), "{err}");
        let err = StorageConnection::from_connection_string("AccountName=abc;AccountKey=secretsecret;BlobEndpoint=http://h/a?sig=secretsig;QueueEndpoint=http://h/a").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        for endpoint in [
            "ht tp://h/a?sig=secretsig",
            "http://user:secretpw@h/a",
            "ftp://h/a#secretfrag",
        ] {
            let cs = format!(
                "AccountName=abc;AccountKey=AAAA;BlobEndpoint={endpoint};QueueEndpoint=http://h/a"
            );
            let err = StorageConnection::from_connection_string(&cs).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("BlobEndpoint"), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn describe_and_debug_never_show_the_key() {
        let conn = StorageConnection::from_connection_string("UseDevelopmentStorage=true").unwrap();
        for text in [conn.describe(), format!("{conn:?}")] {
            assert!(!text.contains("Eby8"), "{text}");
            assert!(text.contains("devstoreaccount1"), "{text}");
            assert!(
                text.contains("http://127.0.0.1:10001/devstoreaccount1"),
                "{text}"
            );
            assert!(text.contains("shared key"), "{text}");
        }
    }

    #[test]
    fn connection_string_setting_wins() {
        let lookup = settings(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://x.blob.core.windows.net",
            ),
        ]);
        let conn = StorageConnection::from_settings("AzureWebJobsStorage", lookup).unwrap();
        assert!(
            matches!(conn, StorageConnection::SharedKey { .. }),
            "{conn:?}"
        );
    }

    #[test]
    fn identity_settings_pick_managed_identity_and_endpoints() {
        let lookup = settings(&[
            ("AzureWebJobsStorage", "  "),
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://mystore01.blob.core.windows.net/",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://mystore01.queue.core.windows.net",
            ),
            ("AzureWebJobsStorage__credential", "managedidentity"),
            (
                "AzureWebJobsStorage__clientId",
                "00000000-1111-2222-3333-444444444444",
            ),
        ]);
        let conn = StorageConnection::from_settings("AzureWebJobsStorage", lookup).unwrap();
        assert_eq!(
            conn,
            StorageConnection::Identity {
                blob_endpoint: Url::parse("https://mystore01.blob.core.windows.net/").unwrap(),
                queue_endpoint: Url::parse("https://mystore01.queue.core.windows.net/").unwrap(),
                client_id: Some("00000000-1111-2222-3333-444444444444".to_owned()),
            }
        );
        let text = conn.describe();
        assert!(
            text.contains("mystore01")
                && text.contains("user-assigned managed identity 00000000-1111"),
            "{text}"
        );
    }

    #[test]
    fn identity_from_account_name_uses_system_identity() {
        let lookup = settings(&[("Storage__accountName", "mystore01")]);
        let conn = StorageConnection::from_settings("Storage", lookup).unwrap();
        assert_eq!(
            conn,
            StorageConnection::Identity {
                blob_endpoint: Url::parse("https://mystore01.blob.core.windows.net").unwrap(),
                queue_endpoint: Url::parse("https://mystore01.queue.core.windows.net").unwrap(),
                client_id: None,
            }
        );
        assert!(conn.describe().contains("system-assigned"));
    }

    #[test]
    fn identity_setting_errors_name_the_setting() {
        let err =
            StorageConnection::from_settings("AzureWebJobsStorage", settings(&[])).unwrap_err();
        assert!(
            matches!(&err, StorageError::MissingSetting { name } if name.contains("AzureWebJobsStorage__blobServiceUri")),
            "{err:?}"
        );

        let err = StorageConnection::from_settings(
            "AzureWebJobsStorage",
            settings(&[(
                "AzureWebJobsStorage__blobServiceUri",
                "https://a.blob.core.windows.net",
            )]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, StorageError::MissingSetting { name } if name.starts_with("AzureWebJobsStorage__queueServiceUri")),
            "{err:?}"
        );

        let err = StorageConnection::from_settings(
            "AzureWebJobsStorage",
            settings(&[
                (
                    "AzureWebJobsStorage__blobServiceUri",
                    "http://a.blob.core.windows.net",
                ),
                (
                    "AzureWebJobsStorage__queueServiceUri",
                    "https://a.queue.core.windows.net",
                ),
            ]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidSetting { name, reason } if name == "AzureWebJobsStorage__blobServiceUri" && reason.contains("https")),
            "{err:?}"
        );

        let err = StorageConnection::from_settings(
            "AzureWebJobsStorage",
            settings(&[
                ("AzureWebJobsStorage__accountName", "mystore01"),
                ("AzureWebJobsStorage__credential", "clientsecret"),
            ]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidSetting { name, .. } if name == "AzureWebJobsStorage__credential"),
            "{err:?}"
        );
    }
}
