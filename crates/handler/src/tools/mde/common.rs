//! Argument checks and list plumbing the Defender tools share.

use crate::mcp::{ToolContext, ToolError};
use crate::outbound::{ApiError, ListPosition};
use crate::tenants::TenantId;
pub use crate::tools::args::{one_line, text};
use crate::tools::cursor;

const MAX_FILTER_CHARS: usize = 2000;
const MAX_COMMENT_CHARS: usize = 1000;

/// The tenant a call acts in, through the allow-list (before any outbound call).
pub fn tenant(context: &ToolContext, requested: Option<&TenantId>) -> Result<TenantId, ToolError> {
    Ok(context
        .services
        .tenants
        .resolve(requested)?
        .tenant_id
        .clone())
}

/// Where a listing starts: a fresh query, or where a cursor left off (its filters kept).
/// `filtered` says whether the call also gave filters, which a cursor already carries.
pub fn list_position(
    tenant: &TenantId,
    cursor: Option<&str>,
    filtered: bool,
    check: impl FnOnce(&ListPosition) -> Result<(), ApiError>,
    fresh: impl FnOnce() -> Result<ListPosition, ToolError>,
) -> Result<ListPosition, ToolError> {
    match cursor {
        Some(_) if filtered => Err(ToolError::invalid(
            "pass either filter or cursor, not both: the cursor already carries its filters",
        )),
        Some(text) => {
            let position = cursor::decode(tenant, text)?;
            check(&position)?;
            Ok(position)
        }
        None => fresh(),
    }
}

/// Defender validates OData itself and its message is passed on; this only refuses what could
/// never be a filter.
pub fn checked_filter(filter: &str) -> Result<&str, ToolError> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Err(ToolError::invalid(
            "filter is empty; omit it to match everything",
        ));
    }
    if filter.len() > MAX_FILTER_CHARS {
        return Err(ToolError::invalid(format!(
            "filter is {} characters; at most {MAX_FILTER_CHARS} are accepted",
            filter.len()
        )));
    }
    if filter.chars().any(char::is_control) {
        return Err(ToolError::invalid(
            "filter contains control characters (such as line breaks); write it on one line",
        ));
    }
    Ok(filter)
}

/// The reason recorded with an action in Defender (and shown in its action center).
pub fn comment(text: Option<&str>) -> Result<String, ToolError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(ToolError::invalid(
            "comment is required: say why (e.g. the incident or ticket); Defender records it with the action for the audit trail",
        ));
    }
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err(ToolError::invalid(format!(
            "comment is longer than {MAX_COMMENT_CHARS} characters"
        )));
    }
    Ok(text.to_string())
}

/// A 404 from Microsoft, said in the caller's terms.
pub fn not_found(error: ApiError, what: impl FnOnce() -> String) -> ToolError {
    if error.is_not_found() {
        ToolError::NotFound(what())
    } else {
        error.into()
    }
}
