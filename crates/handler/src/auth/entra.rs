//! Entra ID access tokens validated in the handler: the token's tenant must be allowed, its
//! issuer must be that tenant's, its audience this app, it must be within its lifetime (a minute
//! of clock skew), and its RS256 signature must verify against the tenant's published keys.
//! Keys are fetched through the shared HTTP client, cached, and fetched again when a token names
//! a key id the cache does not hold (Entra rotates keys), at most once per cooldown.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use super::{Caller, Refusal};
use crate::config::{InboundAuthConfig, RoleNames};
use crate::tenants::TenantId;

/// Allowed clock difference between Entra and this instance.
const CLOCK_SKEW_SECONDS: u64 = 60;
/// Cached keys are fetched again after this long even when every kid is known.
const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

struct TenantKeys {
    set: JwkSet,
    fetched: Instant,
}

pub struct EntraValidator {
    http: reqwest::Client,
    authority: Url,
    audiences: Vec<String>,
    allowed: Vec<TenantId>,
    roles: RoleNames,
    cooldown: Duration,
    keys: tokio::sync::RwLock<HashMap<TenantId, TenantKeys>>,
    /// Held while fetching, so concurrent first requests make one fetch, not many, while tokens
    /// with cached keys keep being checked.
    fetching: tokio::sync::Mutex<()>,
}

/// What is read before the signature is checked: which tenant's keys to use, and the claims
/// that already condemn a token without any key (an expired token is refused even while the key
/// endpoint is down). Nothing read here ever lets a token in: the signed claims are checked again.
#[derive(Deserialize)]
struct Unverified {
    tid: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    aud: Option<Audience>,
    iss: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, wanted: &[String]) -> bool {
        match self {
            Self::One(audience) => wanted.contains(audience),
            Self::Many(audiences) => audiences.iter().any(|audience| wanted.contains(audience)),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    tid: String,
    oid: Option<String>,
    sub: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

impl EntraValidator {
    pub fn new(config: &InboundAuthConfig, http: reqwest::Client) -> Self {
        Self {
            http,
            authority: config.authority.clone(),
            audiences: config.audiences.clone(),
            allowed: config.allowed_tenants.clone(),
            roles: config.roles.clone(),
            cooldown: config.key_refresh_cooldown,
            keys: tokio::sync::RwLock::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn authority(&self) -> &str {
        self.authority.as_str().trim_end_matches('/')
    }

    /// v2.0 tokens name `{authority}/{tenant}/v2.0`; v1.0 tokens (an API whose manifest does not
    /// ask for v2) name `https://sts.windows.net/{tenant}/`.
    fn issuers(&self, tenant: &TenantId) -> [String; 2] {
        [
            format!("{}/{tenant}/v2.0", self.authority()),
            format!("https://sts.windows.net/{tenant}/"),
        ]
    }

    pub async fn validate(&self, token: &str) -> Result<Caller, Refusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| Refusal::Malformed(describe(error.kind())))?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Malformed(format!(
                "algorithm {:?} is not accepted; Entra ID signs with RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::Malformed("the header names no signing key (kid)".into()))?;
        let unverified: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|error| Refusal::Malformed(describe(error.kind())))?;
        let tenant: TenantId = unverified
            .tid
            .as_deref()
            .and_then(|tid| tid.parse().ok())
            .ok_or_else(|| Refusal::Malformed("the token carries no tenant id (tid)".into()))?;
        if !self.allowed.contains(&tenant) {
            return Err(Refusal::TenantNotAllowed(tenant));
        }
        self.refuse_before_keys(&unverified, &tenant)?;
        let key = self.key(&tenant, &kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&self.audiences);
        validation.set_issuer(&self.issuers(&tenant));
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| self.refusal(error.kind()))?
            .claims;
        if claims.tid.parse::<TenantId>().ok().as_ref() != Some(&tenant) {
            return Err(Refusal::WrongIssuer);
        }
        let subject = claims
            .oid
            .or(claims.sub)
            .ok_or_else(|| Refusal::Malformed("the token names no subject (oid or sub)".into()))?;
        let tier = self.roles.tier_of(&claims.roles);
        Ok(Caller {
            subject,
            name: claims.preferred_username.or(claims.upn).or(claims.name),
            tenant: Some(tenant),
            roles: claims.roles,
            tier,
        })
    }

    /// Expiry, audience and issuer can be judged from the claims alone; a token that fails them
    /// is refused without fetching a key.
    fn refuse_before_keys(&self, claims: &Unverified, tenant: &TenantId) -> Result<(), Refusal> {
        let now = jsonwebtoken::get_current_timestamp();
        if claims
            .exp
            .is_some_and(|exp| exp.saturating_add(CLOCK_SKEW_SECONDS) < now)
        {
            return Err(Refusal::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECONDS))
        {
            return Err(Refusal::NotYetValid);
        }
        if claims
            .aud
            .as_ref()
            .is_some_and(|aud| !aud.contains_any(&self.audiences))
        {
            return Err(Refusal::WrongAudience(self.audiences.join(", ")));
        }
        if claims
            .iss
            .as_ref()
            .is_some_and(|iss| !self.issuers(tenant).contains(iss))
        {
            return Err(Refusal::WrongIssuer);
        }
        Ok(())
    }

    fn refusal(&self, kind: &ErrorKind) -> Refusal {
        match kind {
            ErrorKind::ExpiredSignature => Refusal::Expired,
            ErrorKind::ImmatureSignature => Refusal::NotYetValid,
            ErrorKind::InvalidAudience => Refusal::WrongAudience(self.audiences.join(", ")),
            ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => Refusal::BadSignature,
            other => Refusal::Malformed(describe(other)),
        }
    }

    /// The tenant's key named `kid`, fetching the key set when it is not cached, too old, or
    /// lacks that kid (once per cooldown).
    async fn key(&self, tenant: &TenantId, kid: &str) -> Result<DecodingKey, Refusal> {
        if !self.stale(tenant, kid).await {
            return self.cached(tenant, kid).await;
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if self.stale(tenant, kid).await {
            match self.fetch(tenant).await {
                Ok(set) => {
                    self.keys.write().await.insert(
                        tenant.clone(),
                        TenantKeys {
                            set,
                            fetched: Instant::now(),
                        },
                    );
                }
                // Keys already cached keep working while the endpoint is down.
                Err(error) if self.keys.read().await.contains_key(tenant) => {
                    tracing::warn!(tenant = %tenant, error = %error, "signing keys could not be refreshed; using the cached ones");
                }
                Err(error) => return Err(error),
            }
        }
        self.cached(tenant, kid).await
    }

    async fn stale(&self, tenant: &TenantId, kid: &str) -> bool {
        match self.keys.read().await.get(tenant) {
            None => true,
            Some(keys) if keys.fetched.elapsed() > KEYS_MAX_AGE => true,
            Some(keys) => keys.set.find(kid).is_none() && keys.fetched.elapsed() >= self.cooldown,
        }
    }

    async fn cached(&self, tenant: &TenantId, kid: &str) -> Result<DecodingKey, Refusal> {
        let cache = self.keys.read().await;
        let jwk = cache
            .get(tenant)
            .and_then(|keys| keys.set.find(kid))
            .ok_or(Refusal::BadSignature)?;
        DecodingKey::from_jwk(jwk).map_err(|_| Refusal::BadSignature)
    }

    async fn fetch(&self, tenant: &TenantId) -> Result<JwkSet, Refusal> {
        let url = format!("{}/{tenant}/discovery/v2.0/keys", self.authority());
        let unavailable = |reason: String| Refusal::KeysUnavailable(reason);
        let response =
            self.http.get(&url).send().await.map_err(|error| {
                unavailable(format!("no answer from the key endpoint ({error})"))
            })?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "the key endpoint answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let set: JwkSet = response
            .json()
            .await
            .map_err(|error| unavailable(format!("the key set is not JWKS JSON ({error})")))?;
        tracing::info!(tenant = %tenant, keys = set.keys.len(), "fetched the tenant's token signing keys");
        Ok(set)
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidToken => "it does not have three base64url parts".into(),
        ErrorKind::Base64(_) => "a part is not base64url".into(),
        ErrorKind::Json(_) => "its header or claims are not the JSON a JWT carries".into(),
        ErrorKind::Utf8(_) => "a part is not UTF-8".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the claim {claim} is missing"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the claim {claim} has the wrong type"),
        ErrorKind::InvalidAlgorithm => "its algorithm does not match its key".into(),
        other => format!("{other:?}"),
    }
}
