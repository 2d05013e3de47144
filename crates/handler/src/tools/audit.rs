//! `audit_search`: the audit trail of tool calls, for administrators and auditors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::audit::{AuditFilter, AuditRecord, Outcome};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::tenants::TenantId;

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(AuditSearch)
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
/// Records read per call at most, so a rare filter over a busy range answers in bounded time.
const MAX_SCAN: usize = 2000;
const MAX_RANGE_DAYS: i64 = 92;

struct AuditSearch;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AuditSearchParams {
    /// Start of the time range, inclusive, RFC 3339 (e.g. `2026-03-10T00:00:00Z`). Default: 24 hours before `to`.
    from: Option<String>,
    /// End of the time range, exclusive, RFC 3339. Default: now. At most 92 days after `from`.
    to: Option<String>,
    /// Part of the caller's object id or user name, case-insensitive (e.g. `alice@contoso.com`).
    caller: Option<String>,
    /// Only calls that named this tenant (a GUID).
    tenant_id: Option<TenantId>,
    /// Only calls of this tool (exact name, e.g. `mde_isolate_machine`).
    tool: Option<String>,
    /// Only calls that ended so: ok, error, refused (role, read-only, approval, size) or pending_approval.
    outcome: Option<Outcome>,
    /// Most records to return (1-200, default 50).
    limit: Option<u32>,
    /// `next_cursor` from a previous call, to continue that search (its range and filters are kept).
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Search {
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    filter: AuditFilter,
    after: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct AuditSearchOutput {
    /// Matching records, oldest first.
    records: Vec<AuditRecord>,
    /// How many records were read to find these.
    scanned: usize,
    /// Present when the range may hold more matches: pass it as `cursor`.
    next_cursor: Option<String>,
    from: String,
    to: String,
}

impl Summary for AuditSearchOutput {
    fn summary(&self) -> String {
        let more = if self.next_cursor.is_some() {
            "; more may match (use next_cursor)"
        } else {
            ""
        };
        format!(
            "{} audit records between {} and {} ({} examined){more}",
            self.records.len(),
            self.from,
            self.to,
            self.scanned
        )
    }
}

fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime, ToolError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        ToolError::invalid(format!(
            "{name} '{text}' is not an RFC 3339 time such as 2026-03-10T08:00:00Z"
        ))
    })
}

impl AuditSearchParams {
    fn search(self) -> Result<(Search, usize), ToolError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let limit = limit as usize;
        if let Some(cursor) = &self.cursor {
            let filtered = self.from.is_some()
                || self.to.is_some()
                || self.caller.is_some()
                || self.tenant_id.is_some()
                || self.tool.is_some()
                || self.outcome.is_some();
            if filtered {
                return Err(ToolError::invalid(
                    "give either a cursor (which keeps its search) or a range and filters, not both",
                ));
            }
            let invalid = || {
                ToolError::invalid(
                    "cursor is not one this server returned; pass the next_cursor value of the previous call unchanged",
                )
            };
            let bytes = URL_SAFE_NO_PAD
                .decode(cursor.trim())
                .map_err(|_| invalid())?;
            return Ok((
                serde_json::from_slice(&bytes).map_err(|_| invalid())?,
                limit,
            ));
        }
        let to = match &self.to {
            Some(text) => parse_time("to", text)?,
            None => OffsetDateTime::now_utc(),
        };
        let from = match &self.from {
            Some(text) => parse_time("from", text)?,
            None => to - Duration::hours(24),
        };
        if from >= to {
            return Err(ToolError::invalid("from must be before to"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(ToolError::invalid(format!(
                "the range may span at most {MAX_RANGE_DAYS} days; narrow from/to"
            )));
        }
        let filter = AuditFilter {
            caller: self.caller.filter(|c| !c.trim().is_empty()),
            tenant: self.tenant_id.map(String::from),
            tool: self.tool,
            outcome: self.outcome,
        };
        Ok((
            Search {
                from: from.to_offset(time::UtcOffset::UTC),
                to: to.to_offset(time::UtcOffset::UTC),
                filter,
                after: None,
            },
            limit,
        ))
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
            description: "Searches the audit trail of this server's tool calls: who (caller object id and name, roles) called \
                          which tool in which tenant with which arguments (secrets redacted), the outcome, duration, action ids \
                          and how destructive calls were approved. Filter by time range (default: last 24 hours), caller, \
                          tenant, tool and outcome; results are oldest first and paged with a cursor.",
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
        let (search, limit) = params.search()?;
        let page = context
            .services
            .audit
            .search(
                search.from,
                search.to,
                &search.filter,
                search.after.as_deref(),
                limit,
                MAX_SCAN,
            )
            .await
            .map_err(|error| ToolError::Storage(error.to_string()))?;
        let next_cursor = page.resume_after.map(|after| {
            let next = Search {
                after: Some(after),
                ..search
            };
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&next).unwrap_or_default())
        });
        let format = |time: OffsetDateTime| time.format(&Rfc3339).unwrap_or_default();
        Ok(AuditSearchOutput {
            records: page.records,
            scanned: page.scanned,
            next_cursor,
            from: format(search.from),
            to: format(search.to),
        })
    }
}
