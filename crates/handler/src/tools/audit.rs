//! `audit_search`: the audit trail of tool calls, for administrators and auditors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::args::{self, Fields, Limit, Since, Until, When};
use super::cursor;
use super::rows::{self, ListRow, Row, Rows};
use crate::audit::{AuditFilter, AuditRecord, Outcome};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(AuditSearch)
}

/// Records read per call at most, so a rare filter over a busy range answers in bounded time.
const MAX_SCAN: usize = 2000;
const MAX_RANGE_DAYS: i64 = 92;

struct AuditSearch;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AuditSearchParams {
    /// Start of the time range, inclusive. Default: 24 hours before `until`.
    since: Option<When<Since>>,
    /// End of the time range, exclusive. Default: now. At most 92 days after `since`.
    until: Option<When<Until>>,
    /// Part of the caller's object id or user name, case-insensitive (e.g. `alice@contoso.com`).
    caller: Option<String>,
    /// Only calls that named this tenant (a GUID).
    tenant_id: Option<TenantId>,
    /// Only calls of this tool (exact name, e.g. `mde_isolate_machines`).
    tool: Option<String>,
    /// Only calls that ended so: ok, error, refused (role, read-only, approval, size) or pending_approval.
    outcome: Option<Outcome>,
    /// Page size; more with cursor.
    #[serde(default)]
    limit: Limit<15, 200>,
    cursor: Option<String>,
    /// Extra fields, e.g. ["arguments", "approval"], or ["all"].
    fields: Option<Fields<AuditRecord>>,
}

impl ListRow for AuditRecord {
    // Who called what, where, and how it ended; the arguments are asked for with `fields`. The
    // record id is one too (no tool reads a record by id).
    const COMPACT: &'static [&'static str] = &[
        "time",
        "caller",
        "caller_name",
        "tool",
        "tenant",
        "outcome",
        "error",
        "action_ids",
    ];
    const FREE_TEXT: &'static [&'static str] = &["error"];
    const GET_TOOL: Option<&'static str> = None;
}

#[derive(Serialize, Deserialize)]
struct Search {
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    until: OffsetDateTime,
    filter: AuditFilter,
    after: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct AuditSearchOutput {
    /// Matching records, oldest first.
    records: Vec<Row<AuditRecord>>,
    /// Which error messages were cut short, and how to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
    /// How many records were read to find these.
    scanned: usize,
    /// Present when the range may hold more matches: pass it as `cursor`.
    next_cursor: Option<String>,
    since: String,
    until: String,
}

impl Summary for AuditSearchOutput {
    fn summary(&self) -> String {
        let more = if self.next_cursor.is_some() {
            "; more may match (use next_cursor)"
        } else {
            ""
        };
        let cut = rows::cut_note(self.cut.as_ref());
        format!(
            "{} audit records between {} and {} ({} examined){more}{cut}",
            self.records.len(),
            self.since,
            self.until,
            self.scanned
        )
    }
}

impl AuditSearchParams {
    fn search(&self) -> Result<Search, ToolError> {
        if let Some(text) = &self.cursor {
            let filtered = self.since.is_some()
                || self.until.is_some()
                || self.caller.is_some()
                || self.tenant_id.is_some()
                || self.tool.is_some()
                || self.outcome.is_some();
            if filtered {
                return Err(ToolError::invalid(
                    "give either a cursor (which keeps its search) or a range and filters, not both",
                ));
            }
            return cursor::decode_opaque(text);
        }
        let until = self
            .until
            .as_ref()
            .map_or_else(OffsetDateTime::now_utc, When::at);
        let since = self
            .since
            .as_ref()
            .map_or(until - Duration::hours(24), When::at);
        if since >= until {
            return Err(ToolError::invalid("since must be before until"));
        }
        if until - since > Duration::days(MAX_RANGE_DAYS) {
            return Err(ToolError::invalid(format!(
                "the range may span at most {MAX_RANGE_DAYS} days; narrow since/until"
            )));
        }
        let filter = AuditFilter {
            caller: self.caller.clone().filter(|c| !c.trim().is_empty()),
            tenant: self.tenant_id.clone().map(String::from),
            tool: self.tool.clone(),
            outcome: self.outcome,
        };
        Ok(Search {
            since: since.to_offset(time::UtcOffset::UTC),
            until: until.to_offset(time::UtcOffset::UTC),
            filter,
            after: None,
        })
    }
}

#[async_trait::async_trait]
impl Tool for AuditSearch {
    type Params = AuditSearchParams;
    type Output = AuditSearchOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "audit_search",
            title: "Search the audit trail",
            description: "Searches the audit trail of tool calls (oldest first): who called which tool in which \
                         tenant, outcome, duration, action ids, approvals; arguments (secrets redacted) with \
                         fields. Default range: the last 24 hours.",
            toolset: Toolset::Audit,
            effect: Effect::Read,
            tier: Tier::Admin,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: AuditSearchParams,
    ) -> Result<AuditSearchOutput, ToolError> {
        let search = params.search()?;
        let page = context
            .services
            .audit
            .search(
                search.since,
                search.until,
                &search.filter,
                search.after.as_deref(),
                params.limit.get(),
                MAX_SCAN,
            )
            .await
            .map_err(|error| ToolError::Storage(error.to_string()))?;
        let next_cursor = page.resume_after.map(|after| {
            let next = Search {
                after: Some(after),
                ..search
            };
            cursor::encode_opaque(&next)
        });
        let Rows { rows, cut } = rows::rows(page.records, params.fields.as_ref());
        Ok(AuditSearchOutput {
            records: rows,
            cut,
            scanned: page.scanned,
            next_cursor,
            since: args::rfc3339(search.since),
            until: args::rfc3339(search.until),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::audit::{Outcome, Storing};
    use crate::testing::Harness;

    fn record(minutes_ago: i64, caller: &str, tool: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::new_v4().to_string(),
            time: OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago),
            caller: caller.to_owned(),
            caller_name: Some(format!("{caller}@contoso.com")),
            caller_tenant: None,
            roles: vec!["MCP.Responder".to_owned()],
            tool: tool.to_owned(),
            tier: None,
            tenant: None,
            arguments: json!({"comment": "INC-7"}),
            outcome,
            error: None,
            duration_ms: 12,
            action_ids: Vec::new(),
            approval: None,
            approval_id: None,
            approver: None,
        }
    }

    #[tokio::test]
    async fn a_search_filters_pages_oldest_first_and_shows_arguments_only_when_asked() {
        let harness = Harness::start().await;
        let audit = &harness.context.services.audit;
        for (minutes_ago, caller, tool, outcome) in [
            (50, "alice", "mde_isolate_machines", Outcome::Ok),
            (40, "bob", "mde_list_machines", Outcome::Ok),
            (30, "alice", "mde_isolate_machines", Outcome::Refused),
            (20, "alice", "mde_isolate_machines", Outcome::Ok),
            (26 * 60, "alice", "mde_isolate_machines", Outcome::Ok),
        ] {
            audit
                .append(
                    record(minutes_ago, caller, tool, outcome),
                    Storing::BeforeAnswer,
                )
                .await;
        }
        let first = harness
            .ok(
                &AuditSearch,
                json!({"caller": "ALICE@contoso", "tool": "mde_isolate_machines", "outcome": "ok",
                       "limit": 1}),
            )
            .await;
        let records = first["records"].as_array().expect("records");
        assert_eq!(records.len(), 1, "{first}");
        assert_eq!(records[0]["caller"], "alice");
        assert!(records[0].get("arguments").is_none(), "asked with fields");
        let next = harness
            .ok(
                &AuditSearch,
                json!({"cursor": first["next_cursor"], "fields": ["arguments"]}),
            )
            .await;
        let records = next["records"].as_array().expect("records");
        assert_eq!(
            records.len(),
            1,
            "the refused call and yesterday's are outside: {next}"
        );
        assert_eq!(records[0]["arguments"], json!({"comment": "INC-7"}));
        assert!(records[0]["time"].as_str() > first["records"][0]["time"].as_str());
    }

    #[tokio::test]
    async fn ranges_are_checked() {
        let harness = Harness::start().await;
        let message = harness
            .refusal(
                &AuditSearch,
                json!({"since": "2026-01-01T00:00:00Z", "until": "2025-12-01T00:00:00Z"}),
            )
            .await;
        assert!(message.contains("since must be before until"), "{message}");
        let message = harness
            .refusal(
                &AuditSearch,
                json!({"since": "2026-01-01T00:00:00Z", "until": "2026-06-01T00:00:00Z"}),
            )
            .await;
        assert!(message.contains("92"), "{message}");
    }
}
