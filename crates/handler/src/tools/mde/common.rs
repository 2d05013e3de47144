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
pub fn checked_filter(filter: &str) -> Result<String, ToolError> {
    if filter.trim().is_empty() {
        return Err(ToolError::invalid(
            "filter is empty; omit it to match everything",
        ));
    }
    one_line("filter", filter, MAX_FILTER_CHARS)
}

/// The reason recorded with an action in Defender (and shown in its action center).
pub fn comment(given: Option<&str>) -> Result<String, ToolError> {
    match given {
        Some(given) if !given.trim().is_empty() => text("comment", given, MAX_COMMENT_CHARS),
        _ => Err(ToolError::invalid(
            "comment is required: say why (e.g. the incident or ticket); Defender records it with the action for the audit trail",
        )),
    }
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
    use std::cell::Cell;

    use reqwest::StatusCode;
    use url::Url;

    use super::*;
    use crate::outbound::Api;

    #[test]
    fn a_filter_is_trimmed_and_refused_only_when_it_could_never_be_one() {
        assert_eq!(
            checked_filter("  riskScore eq 'High' \n").expect("valid"),
            "riskScore eq 'High'"
        );
        let longest = format!("computerDnsName eq '{}'", "a".repeat(MAX_FILTER_CHARS - 21));
        assert_eq!(longest.len(), MAX_FILTER_CHARS);
        assert!(checked_filter(&longest).is_ok());
        // Two thousand characters, twice as many bytes: accepted.
        let accented = format!("computerDnsName eq '{}'", "é".repeat(MAX_FILTER_CHARS - 21));
        assert_eq!(
            checked_filter(&accented).expect("counted in characters"),
            accented
        );
        for (filter, expected) in [
            ("   ".to_owned(), "omit it to match everything"),
            (
                format!("{longest}a"),
                "filter is 2001 characters; at most 2000 are accepted",
            ),
            (
                "riskScore eq 'High'\nor healthStatus eq 'Active'".to_owned(),
                "write it on one line",
            ),
            ("riskScore eq\t'High'".to_owned(), "control characters"),
        ] {
            let message = checked_filter(&filter).expect_err("refused").to_string();
            assert!(message.contains(expected), "{filter:?}: {message}");
        }
    }

    #[test]
    fn a_comment_is_required_and_counted_in_characters() {
        for missing in [None, Some(""), Some(" \n ")] {
            let message = comment(missing).expect_err("required").to_string();
            assert!(
                message.contains("comment is required") && message.contains("audit trail"),
                "{missing:?}: {message}"
            );
        }
        assert_eq!(comment(Some("  INC-4711 \n")).expect("valid"), "INC-4711");
        // A thousand characters, twice as many bytes: accepted.
        assert!(comment(Some(&"é".repeat(MAX_COMMENT_CHARS))).is_ok());
        let message = comment(Some(&"x".repeat(MAX_COMMENT_CHARS + 1)))
            .expect_err("too long")
            .to_string();
        assert!(
            message.contains("is 1001 characters; at most 1000 are accepted"),
            "{message}"
        );
    }

    fn position() -> ListPosition {
        ListPosition {
            page: Url::parse("https://api.security.microsoft.com/api/machines?$skip=50")
                .expect("url"),
            skip: 3,
        }
    }

    #[test]
    fn a_cursor_resumes_its_own_listing_and_never_with_filters_or_another_tenant() {
        let contoso: TenantId = "11111111-1111-4111-8111-111111111111".parse().expect("id");
        let fabrikam: TenantId = "22222222-2222-4222-8222-222222222222".parse().expect("id");
        let cursor = cursor::encode(&contoso, position());
        let checked = Cell::new(0);
        let fresh = Cell::new(0);
        let start = |tenant: &TenantId, text: Option<&str>, filtered: bool| {
            list_position(
                tenant,
                text,
                filtered,
                |_| {
                    checked.set(checked.get() + 1);
                    Ok(())
                },
                || {
                    fresh.set(fresh.get() + 1);
                    Ok(ListPosition::start(
                        Url::parse("https://api.security.microsoft.com/api/machines").expect("url"),
                    ))
                },
            )
        };

        let resumed = start(&contoso, Some(&cursor), false).expect("resumed");
        assert_eq!(resumed, position());
        assert_eq!((checked.get(), fresh.get()), (1, 0));

        let message = start(&contoso, Some(&cursor), true)
            .expect_err("both")
            .to_string();
        assert!(message.contains("either filter or cursor"), "{message}");
        assert!(
            start(&fabrikam, Some(&cursor), false).is_err(),
            "bound to its tenant"
        );
        assert_eq!(
            checked.get(),
            1,
            "a refused cursor is never checked or followed"
        );

        assert_eq!(start(&contoso, None, true).expect("fresh").skip, 0);
        assert_eq!(fresh.get(), 1);

        // What the API client refuses of a decoded position (a foreign origin) is refused.
        let refused = list_position(
            &contoso,
            Some(&cursor),
            false,
            |position| {
                Err(ApiError::ForeignLink {
                    api: Api::Defender,
                    link: position.page.to_string(),
                })
            },
            || unreachable!("a cursor was given"),
        );
        assert!(refused.is_err());
    }

    #[test]
    fn only_a_404_becomes_not_found_in_the_callers_terms() {
        let status = |status: StatusCode| ApiError::Status {
            api: Api::Defender,
            status,
            code: None,
            message: "No machine found".into(),
        };
        match not_found(status(StatusCode::NOT_FOUND), || "no machine 'abc'".into()) {
            ToolError::NotFound(message) => assert_eq!(message, "no machine 'abc'"),
            other => panic!("{other:?}"),
        }
        let passed_on = not_found(status(StatusCode::FORBIDDEN), || unreachable!());
        assert!(
            !matches!(passed_on, ToolError::NotFound(_)),
            "{passed_on:?}"
        );
        assert!(passed_on.to_string().contains("403"), "{passed_on}");
    }
}
