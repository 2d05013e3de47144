//! A local stand-in for Entra ID's token signing: RSA keys generated here, their public halves
//! served as a JWKS on loopback at `/{tenant}/discovery/v2.0/keys`, and tokens signed with them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The app registration the handler accepts tokens for.
pub const AUDIENCE: &str = "api://defender-mcp-test";
/// The caller tenant the handler trusts (the MSSP's own), distinct from the customer tenants.
pub const HOME_TENANT: &str = "9c6a1f7e-5b2d-4c8e-a3f1-0d4e7b9a2c55";
pub const OTHER_TENANT: &str = "5f0e2d1c-8b7a-4f6e-9d3c-2b1a0f9e8d7c";

struct Key {
    kid: String,
    pair: KeyPair,
}

#[derive(Clone)]
struct Published {
    keys: Arc<Mutex<Vec<Key>>>,
    fetches: Arc<AtomicUsize>,
}

pub struct LocalEntra {
    pub authority: String,
    published: Published,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

fn generate(kid: &str) -> Key {
    Key {
        kid: kid.to_string(),
        pair: KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
    }
}

fn jwk(key: &Key) -> Value {
    let public = key.pair.public_key();
    json!({
        "kty": "RSA",
        "use": "sig",
        "kid": key.kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    })
}

fn sign(key: &Key, kid: &str, claims: &Value) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{payload}");
    let mut signature = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .expect("sign");
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn keys(State(published): State<Published>) -> Json<Value> {
    published.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = published.keys.lock().expect("keys");
    Json(json!({ "keys": keys.iter().map(jwk).collect::<Vec<_>>() }))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

impl LocalEntra {
    pub async fn start() -> Self {
        let published = Published {
            keys: Arc::new(Mutex::new(vec![generate("key-1")])),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let router = axum::Router::new()
            .route("/{tenant}/discovery/v2.0/keys", get(keys))
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await;
        });
        Self {
            authority: format!("http://{address}"),
            published,
            shutdown: Some(shutdown),
        }
    }

    /// The settings that make the handler trust this authority for `HOME_TENANT`.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTH_INBOUND_MODE", "entra".into()),
            ("AUTH_AUDIENCE", AUDIENCE.into()),
            ("AUTH_ALLOWED_TENANTS", HOME_TENANT.into()),
            ("AUTH_AUTHORITY_HOST", self.authority.clone()),
        ]
    }

    /// Valid claims for a user of `tenant` with `roles`, issued by this authority.
    pub fn claims(&self, tenant: &str, oid: &str, roles: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": format!("{}/{tenant}/v2.0", self.authority),
            "aud": AUDIENCE,
            "tid": tenant,
            "oid": oid,
            "sub": format!("sub-{oid}"),
            "preferred_username": format!("{oid}@contoso.example"),
            "roles": roles,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
        })
    }

    /// A valid token for a user of the home tenant with `roles`.
    pub fn token(&self, oid: &str, roles: &[&str]) -> String {
        self.sign(&self.claims(HOME_TENANT, oid, roles))
    }

    /// `claims` signed with the newest published key.
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.published.keys.lock().expect("keys");
        let key = keys.last().expect("a key");
        sign(key, &key.kid, claims)
    }

    /// `claims` signed with a key nobody published, under the published key's id.
    pub fn forge(&self, claims: &Value) -> String {
        let kid = self
            .published
            .keys
            .lock()
            .expect("keys")
            .last()
            .expect("a key")
            .kid
            .clone();
        sign(&generate("forger"), &kid, claims)
    }

    /// Publishes a new key (Entra's rotation); tokens are signed with it from now on.
    pub fn rotate(&self) {
        let mut keys = self.published.keys.lock().expect("keys");
        let kid = format!("key-{}", keys.len() + 1);
        keys.push(generate(&kid));
    }

    /// Stops serving (the key endpoint goes down).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub fn key_fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for LocalEntra {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
