//! Argument checks and list plumbing the Defender tools share.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::mcp::{ToolContext, ToolError};
use crate::outbound::{ApiError, ListPosition};
use crate::tenants::TenantId;
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

/// A page size within `1..=max`.
pub fn limit(requested: Option<u32>, default: u32, max: u32) -> Result<usize, ToolError> {
    let limit = requested.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(ToolError::invalid(format!(
            "limit must be between 1 and {max}, got {limit}"
        )))
    }
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

/// Free text a person writes (a comment, a description): trimmed, 1 to `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ToolError::invalid(format!(
            "{field} must be 1-{max} characters"
        )));
    }
    Ok(value.to_string())
}

/// A name or value that goes into a filter or a title: as `text`, and on one line.
pub fn one_line(field: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let value = text(field, value, max)?;
    if value.chars().any(char::is_control) {
        return Err(ToolError::invalid(format!(
            "{field} must be on one line (no control characters such as line breaks)"
        )));
    }
    Ok(value)
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

/// A point in time for `since` filters: an RFC 3339 instant (`2024-05-01T08:00:00Z`) or an ISO
/// 8601 duration back from now (`PT24H`, `P7D`). Returned as an OData literal in UTC.
pub fn since(text: &str) -> Result<String, ToolError> {
    let text = text.trim();
    let instant = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(instant) => instant,
        Err(_) => {
            let ago = iso_duration(text).ok_or_else(|| {
                ToolError::invalid(format!(
                    "since '{text}' is neither an RFC 3339 date-time (2024-05-01T08:00:00Z) nor an ISO 8601 duration back from now (PT24H, P7D)"
                ))
            })?;
            OffsetDateTime::now_utc() - ago
        }
    };
    let utc = instant
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(instant);
    utc.format(&Rfc3339).map_err(|error| {
        ToolError::invalid(format!(
            "since '{text}' cannot be written as a date: {error}"
        ))
    })
}

/// `P[nD][T[nH][nM][nS]]`, whole numbers only, at least one part.
pub fn iso_duration(text: &str) -> Option<time::Duration> {
    let rest = text.strip_prefix('P').or_else(|| text.strip_prefix('p'))?;
    let (days, time_part) = match rest.split_once(['T', 't']) {
        Some((days, time_part)) => (days, Some(time_part)),
        None => (rest, None),
    };
    let mut total = time::Duration::ZERO;
    let mut parts = 0;
    let mut take = |text: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units
                .iter()
                .skip(next_unit)
                .position(|(unit, _)| unit.eq_ignore_ascii_case(&c))?
                + next_unit;
            let value: i64 = number.parse().ok()?;
            total += time::Duration::seconds(value.checked_mul(units[position].1)?);
            number.clear();
            next_unit = position + 1;
            parts += 1;
        }
        number.is_empty().then_some(())
    };
    take(days, &[('D', 86_400)])?;
    if let Some(time_part) = time_part {
        if time_part.is_empty() {
            return None;
        }
        take(time_part, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    (parts > 0).then_some(total)
}

/// A 404 from Microsoft, said in the caller's terms.
pub fn not_found(error: ApiError, what: impl FnOnce() -> String) -> ToolError {
    if error.is_not_found() {
        ToolError::NotFound(what())
    } else {
        error.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(iso_duration("P7D"), Some(time::Duration::days(7)));
        assert_eq!(iso_duration("PT24H"), Some(time::Duration::hours(24)));
        assert_eq!(
            iso_duration("P1DT2H30M"),
            Some(time::Duration::minutes(1590))
        );
        for bad in ["7d", "P", "PT", "P1H", "PT1D", "P1.5D", "PM1"] {
            assert_eq!(iso_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_accepts_instants_and_durations() {
        assert_eq!(
            since("2024-05-01T08:00:00.123+02:00").expect("instant"),
            "2024-05-01T06:00:00Z"
        );
        let ago = since("PT1H").expect("duration");
        let parsed = OffsetDateTime::parse(&ago, &Rfc3339).expect("rfc 3339");
        let age = OffsetDateTime::now_utc() - parsed;
        assert!(
            age >= time::Duration::minutes(59) && age <= time::Duration::minutes(61),
            "{age}"
        );
        assert!(
            since("yesterday")
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
    }
}
