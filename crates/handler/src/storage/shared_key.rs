//! Storage account Shared Key request signing, as an azure_core pipeline policy.
//!
//! Why this file exists: the 1.x `azure_storage_blob` / `azure_storage_queue` clients accept only
//! an Entra ID `TokenCredential` (which they also restrict to https endpoints) or no credential at
//! all. There is no connection-string, account-key or `UseDevelopmentStorage=true` support
//! (upstream issue Azure/azure-sdk-for-rust#2975), so they cannot talk to a plain-http Azurite,
//! which accepts only Shared Key or SAS there. The clients do accept extra per-try policies through
//! `ClientOptions::per_try_policies`, and those run after the SDK has set every header it sends, so
//! signing there is enough to use the unmodified SDK clients against Azurite or against an account
//! whose key is in the connection string. When the SDK gains native Shared Key support this file
//! should be deleted in favour of it.
//!
//! Algorithm: "Authorize with Shared Key", Blob/Queue/File services, version 2009-09-19 and later.
//! <https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>

use std::{collections::BTreeMap, fmt, sync::Arc};

use async_trait::async_trait;
use azure_core::{
    error::ErrorKind,
    http::{
        Context, Request,
        headers::HeaderName,
        policies::{Policy, PolicyResult},
    },
    time::{OffsetDateTime, to_rfc7231},
};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::StorageError;

type HmacSha256 = Hmac<Sha256>;

/// A decoded storage account key. Its `Debug` output never shows the key material.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey(Vec<u8>);

impl AccountKey {
    /// Decodes the base64 key exactly as it appears in a connection string (`AccountKey=...`).
    pub fn from_base64(encoded: &str) -> Result<Self, StorageError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| StorageError::InvalidConnectionString {
                // The decoder's message can quote the offending character; keep the key out of logs.
                reason: "AccountKey is not valid base64".to_owned(),
            })?;
        if bytes.is_empty() {
            return Err(StorageError::InvalidConnectionString {
                reason: "AccountKey is empty".to_owned(),
            });
        }
        Ok(Self(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail; the match only avoids a panic path.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        }
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// Signs every attempt of a request with `Authorization: SharedKey <account>:<signature>`.
///
/// It must run per try (not per call): each retry gets a fresh `x-ms-date`, and the service rejects
/// requests whose date is more than 15 minutes off.
pub(crate) struct SharedKeyPolicy {
    account: String,
    // Keyed once at construction; cloning a keyed HMAC is cheaper than re-keying per request.
    mac: HmacSha256,
}

impl SharedKeyPolicy {
    pub(crate) fn new(account: &str, key: &AccountKey) -> Arc<Self> {
        Arc::new(Self {
            account: account.to_owned(),
            mac: key.mac(),
        })
    }

    fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(string_to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    fn authorize(&self, request: &mut Request, now: OffsetDateTime) -> azure_core::Result<()> {
        request.insert_header(X_MS_DATE, to_rfc7231(&now));
        let string_to_sign = string_to_sign(&self.account, request)?;
        let signature = self.sign(&string_to_sign);
        request.insert_header(
            AUTHORIZATION,
            format!("SharedKey {}:{}", self.account, signature),
        );
        Ok(())
    }
}

impl fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.authorize(request, OffsetDateTime::now_utc())?;
        match next.split_first() {
            Some((head, rest)) => head.send(ctx, request, rest).await,
            // The SDK pipeline always ends with its transport policy, so this means misuse.
            None => Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "SharedKeyPolicy must not be the last policy in the pipeline",
            )),
        }
    }
}

const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
const AUTHORIZATION: HeaderName = HeaderName::from_static("authorization");
const CONTENT_LENGTH: HeaderName = HeaderName::from_static("content-length");

/// The standard headers of the string-to-sign, in the order the specification lists them.
/// `Date` is always empty because this policy always sends `x-ms-date`, which takes precedence.
const STANDARD_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// Builds the Shared Key string-to-sign for `request` (which must already carry `x-ms-date`).
pub(crate) fn string_to_sign(account: &str, request: &Request) -> azure_core::Result<String> {
    let headers = request.headers();
    let mut out = String::with_capacity(256);
    out.push_str(request.method().as_ref());
    out.push('\n');
    for name in STANDARD_HEADERS {
        let value = match name {
            "date" => String::new(),
            "content-length" => content_length(request)?,
            _ => headers
                .get_optional_str(&HeaderName::from_static(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
        };
        out.push_str(&value);
        out.push('\n');
    }

    // CanonicalizedHeaders: x-ms-* names are already lowercase (azure_core enforces lowercase
    // header names) and unique (headers are a map); BTreeMap gives the required name order.
    let ms_headers: BTreeMap<&str, &str> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .filter(|(name, _)| name.starts_with("x-ms-"))
        .collect();
    for (name, value) in ms_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }

    out.push_str(&canonicalized_resource(account, request.url()));
    Ok(out)
}

/// Content-Length as it must appear in the string-to-sign: empty when zero (version 2015-02-21+).
///
/// The SDK sets an explicit header for uploads; otherwise the body length is what the transport
/// will send (the transport adds `Content-Length: 0` to empty PUT/POST after this policy runs).
fn content_length(request: &Request) -> azure_core::Result<String> {
    let length = match request.headers().get_optional_str(&CONTENT_LENGTH) {
        Some(value) => value.trim().parse::<u64>().map_err(|_| {
            azure_core::Error::with_message(
                ErrorKind::Other,
                "cannot sign request: its content-length header is not a number",
            )
        })?,
        None => request.body().len().ok_or_else(|| {
            azure_core::Error::with_message(
                ErrorKind::Other,
                "cannot sign request: its body has no known length",
            )
        })?,
    };
    Ok(if length == 0 {
        String::new()
    } else {
        length.to_string()
    })
}

/// `/account/encoded-path` followed by `\nname:v1,v2` per query parameter, names lowercased and
/// sorted, values decoded and sorted.
///
/// The path is used exactly as sent (still percent-encoded), which is also what Azurite compares;
/// for Azurite's path-style URLs this yields `/devstoreaccount1/devstoreaccount1/...` as documented.
fn canonicalized_resource(account: &str, url: &url::Url) -> String {
    let mut out = String::with_capacity(64);
    out.push('/');
    out.push_str(account);
    out.push_str(url.path());

    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url.query_pairs() {
        params
            .entry(name.to_lowercase())
            .or_default()
            .push(value.into_owned());
    }
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::Method;
    use time::macros::datetime;

    // Azurite's well-known development account (public, documented by Microsoft).
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn request(method: Method, url: &str) -> Request {
        let url = url::Url::parse(url).expect("test url");
        Request::new(url, method)
    }

    /// The worked example from "Authorize with Shared Key" (Get Container Metadata, version
    /// 2015-02-21): the docs give the exact string-to-sign.
    #[test]
    fn string_to_sign_matches_microsoft_docs_example() {
        let mut req = request(
            Method::Get,
            "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
        );
        req.insert_header("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT");
        req.insert_header("x-ms-version", "2015-02-21");
        let sts = string_to_sign("myaccount", &req).expect("sign");
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        );
    }

    /// The docs' canonicalized-resource example with a repeated parameter (values sorted, joined).
    #[test]
    fn canonicalized_resource_sorts_and_merges_query_values() {
        let url = url::Url::parse(
            "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs",
        )
        .expect("url");
        assert_eq!(
            canonicalized_resource("myaccount", &url),
            "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container"
        );
    }

    #[test]
    fn canonicalized_resource_keeps_encoded_path_and_decodes_query() {
        let url = url::Url::parse(
            "http://127.0.0.1:10000/devstoreaccount1/c/a%20b/x.json?Prefix=jobs%2Fa+b&comp=list",
        )
        .expect("url");
        assert_eq!(
            canonicalized_resource("devstoreaccount1", &url),
            "/devstoreaccount1/devstoreaccount1/c/a%20b/x.json\ncomp:list\nprefix:jobs/a b"
        );
        // List Containers on a real account: the path portion is just "/".
        let url = url::Url::parse("https://acct.blob.core.windows.net/?comp=list").expect("url");
        assert_eq!(canonicalized_resource("acct", &url), "/acct/\ncomp:list");
    }

    #[test]
    fn standard_headers_fill_their_slots_and_zero_length_is_empty() {
        let mut req = request(
            Method::Put,
            "http://127.0.0.1:10000/devstoreaccount1/c/b.json",
        );
        req.insert_header("x-ms-date", "Mon, 01 Jan 2024 00:00:00 GMT");
        req.insert_header("x-ms-version", "2026-02-06");
        req.insert_header("if-none-match", "*");
        req.insert_header("content-type", "application/json");
        req.insert_header("x-ms-blob-type", "BlockBlob");
        req.insert_header("content-length", "0");
        let sts = string_to_sign("devstoreaccount1", &req).expect("sign");
        assert_eq!(
            sts,
            "PUT\n\n\n\n\napplication/json\n\n\n\n*\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\nx-ms-version:2026-02-06\n/devstoreaccount1/devstoreaccount1/c/b.json"
        );

        // Without an explicit header the body length is signed.
        let mut req = request(
            Method::Post,
            "http://127.0.0.1:10001/devstoreaccount1/q/messages",
        );
        req.set_body(azure_core::Bytes::from_static(b"<QueueMessage/>"));
        let sts = string_to_sign("devstoreaccount1", &req).expect("sign");
        assert!(sts.starts_with("POST\n\n\n15\n"), "{sts:?}");
    }

    /// Full signature for the docs' example request under Azurite's dev key. The expected value
    /// was computed independently with Node's `crypto.createHmac("sha256", key)` over the
    /// string-to-sign above; the integration tests additionally prove Azurite accepts our headers.
    #[test]
    fn authorize_sets_date_and_signature() {
        let key = AccountKey::from_base64(DEV_KEY).expect("key");
        let policy = SharedKeyPolicy::new("myaccount", &key);
        let mut req = request(
            Method::Get,
            "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
        );
        req.insert_header("x-ms-version", "2015-02-21");
        policy
            .authorize(&mut req, datetime!(2015-06-26 23:39:12 UTC))
            .expect("authorize");
        assert_eq!(
            req.headers().get_optional_str(&X_MS_DATE),
            Some("Fri, 26 Jun 2015 23:39:12 GMT")
        );
        assert_eq!(
            req.headers().get_optional_str(&AUTHORIZATION),
            Some(EXPECTED_DOCS_EXAMPLE_AUTHORIZATION)
        );
    }
    const EXPECTED_DOCS_EXAMPLE_AUTHORIZATION: &str =
        "SharedKey myaccount:1u9lui2jDxj0+fpbHjQ5m5NnastJRSYM+PSmfi8TXx4=";

    #[test]
    fn key_is_never_printed() {
        let key = AccountKey::from_base64(DEV_KEY).expect("key");
        assert_eq!(format!("{key:?}"), "AccountKey(<redacted>)");
        let policy = SharedKeyPolicy::new("devstoreaccount1", &key);
        let printed = format!("{policy:?}");
        assert!(!printed.contains("Eby8"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn bad_key_is_rejected_without_echoing_it() {
        let err = AccountKey::from_base64("not*base64!").expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("AccountKey is not valid base64"), "{text}");
        assert!(!text.contains("not*base64"), "{text}");
        assert!(AccountKey::from_base64("").is_err());
    }
}
