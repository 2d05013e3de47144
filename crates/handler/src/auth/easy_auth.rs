//! App Service authentication ("Easy Auth"): when it fronts the app it validates the token
//! itself and passes the principal in `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the claims). App
//! Service strips that header from outside requests, which is why this mode is only safe when
//! Easy Auth really is in front (`AUTH_INBOUND_MODE=easyauth`).

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;

use super::{Caller, Refusal};
use crate::config::InboundAuthConfig;
use crate::tenants::TenantId;

pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal";

#[derive(Deserialize)]
struct Principal {
    #[serde(default)]
    claims: Vec<Claim>,
    role_typ: Option<String>,
}

#[derive(Deserialize)]
struct Claim {
    typ: String,
    val: String,
}

/// Claim types as App Service maps them (long URIs) and as the token names them.
const TENANT: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/tenantid",
    "tid",
];
const OBJECT_ID: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
];
const NAME: [&str; 3] = [
    "preferred_username",
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
];
const ROLE: [&str; 2] = [
    "roles",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
];
const AUDIENCE: [&str; 1] = ["aud"];

impl Principal {
    fn first(&self, types: &[&str]) -> Option<&str> {
        types.iter().find_map(|typ| {
            self.claims
                .iter()
                .find(|c| c.typ == *typ)
                .map(|c| c.val.as_str())
        })
    }
}

pub fn caller(headers: &HeaderMap, config: &InboundAuthConfig) -> Result<Caller, Refusal> {
    let encoded = headers
        .get(PRINCIPAL_HEADER)
        .ok_or(Refusal::NoEasyAuthPrincipal)?;
    let bad = |reason: &str| Refusal::BadEasyAuthPrincipal(reason.to_string());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| bad("not base64"))?;
    let principal: Principal =
        serde_json::from_slice(&bytes).map_err(|_| bad("not the {claims:[{typ,val}]} JSON"))?;
    let tenant: TenantId = principal
        .first(&TENANT)
        .and_then(|tid| tid.parse().ok())
        .ok_or_else(|| bad("no tenant id claim"))?;
    if !config.allowed_tenants.contains(&tenant) {
        return Err(Refusal::TenantNotAllowed(tenant));
    }
    // App Service already checked the audience against its own allowed audiences; this is the
    // handler's own check when it is told which audiences to expect.
    if let Some(audience) = principal.first(&AUDIENCE)
        && !config.audiences.is_empty()
        && !config.audiences.iter().any(|accepted| accepted == audience)
    {
        return Err(Refusal::WrongAudience(config.audiences.join(", ")));
    }
    let subject = principal
        .first(&OBJECT_ID)
        .ok_or_else(|| bad("no object id claim"))?
        .to_string();
    let role_types: Vec<&str> = ROLE
        .iter()
        .copied()
        .chain(principal.role_typ.as_deref())
        .collect();
    let roles: Vec<String> = principal
        .claims
        .iter()
        .filter(|claim| role_types.contains(&claim.typ.as_str()))
        .map(|claim| claim.val.clone())
        .collect();
    let tier = config.roles.tier_of(&roles);
    Ok(Caller {
        subject,
        name: principal.first(&NAME).map(str::to_owned),
        tenant: Some(tenant),
        roles,
        tier,
    })
}
