//! Opaque paging cursors handed to the model: where a list continues, bound to the tenant it
//! was made for so that it cannot be replayed against another tenant.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::mcp::ToolError;
use crate::outbound::ListPosition;
use crate::tenants::TenantId;

#[derive(Serialize, Deserialize)]
struct Cursor {
    tenant: TenantId,
    position: ListPosition,
}

/// The end of a list tool's summary: tells the reader that a cursor leads to more items.
pub fn more_note(next_cursor: Option<&String>) -> &'static str {
    if next_cursor.is_some() {
        "; more match (use next_cursor)"
    } else {
        ""
    }
}

pub fn encode(tenant: &TenantId, position: ListPosition) -> String {
    encode_opaque(&Cursor {
        tenant: tenant.clone(),
        position,
    })
}

pub fn decode(tenant: &TenantId, cursor: &str) -> Result<ListPosition, ToolError> {
    let decoded: Cursor = decode_opaque(cursor)?;
    if &decoded.tenant != tenant {
        return Err(ToolError::invalid(format!(
            "cursor was made for tenant {}, not {tenant}; start the listing again without a cursor",
            decoded.tenant
        )));
    }
    Ok(decoded.position)
}

/// Any position a tool needs to hand back, as an opaque string.
pub fn encode_opaque<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

pub fn decode_opaque<T: DeserializeOwned>(cursor: &str) -> Result<T, ToolError> {
    let invalid = || {
        ToolError::invalid(
            "cursor is not one this server returned; pass the next_cursor value of the previous call unchanged",
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_tenant() {
        let a: TenantId = "11111111-1111-4111-8111-111111111111"
            .parse()
            .expect("guid");
        let b: TenantId = "22222222-2222-4222-8222-222222222222"
            .parse()
            .expect("guid");
        let position = ListPosition {
            page: "https://example.test/api/machines?$skip=25"
                .parse()
                .expect("url"),
            skip: 3,
        };
        let cursor = encode(&a, position.clone());
        assert_eq!(decode(&a, &cursor).expect("same tenant"), position);
        assert!(
            decode(&b, &cursor)
                .expect_err("other tenant")
                .to_string()
                .contains("made for tenant")
        );
        assert!(decode(&a, "not-a-cursor").is_err());
    }
}
