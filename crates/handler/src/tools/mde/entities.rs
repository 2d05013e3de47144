//! What Defender knows about a file, an IP address or a domain, and how widely it was seen in
//! the organisation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::clients::defender::{
    Alert, DomainStats, FileHash, FileInfo, FileStats, IndicatorType, IpStats,
};
use crate::mcp::{
    CatalogueBuilder, Effect, Summary, Tier, Tool, ToolContext, ToolError, ToolSpec, Toolset,
};
use crate::outbound::{Api, ApiError};
use crate::tenants::TenantId;
use crate::tools::args;
use crate::tools::rows::{self, Row, Rows};

pub fn register(builder: CatalogueBuilder) -> CatalogueBuilder {
    builder.tool(FileInfoTool).tool(IpInfo).tool(DomainInfo)
}

/// Related alerts returned inline; the count says how many there are.
const MAX_ALERTS: usize = 20;

struct FileInfoTool;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileParams {
    tenant_id: Option<TenantId>,
    /// The file's SHA-1 or SHA-256 (hexadecimal). Defender documents no look-up by MD5.
    hash: FileHash,
}

#[derive(Serialize, JsonSchema)]
struct FileOutput {
    tenant_id: TenantId,
    file: FileInfo,
    /// Sightings in this organisation (absent when Defender has none).
    organization: Option<FileStats>,
    /// How many alerts involve the file.
    alert_count: usize,
    /// The first 20 of them.
    alerts: Vec<Row<Alert>>,
    /// Which free-text fields of the alerts were cut short, and where to read them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<String>,
}

impl Summary for FileOutput {
    fn summary(&self) -> String {
        let f = &self.file;
        let verdict = match (
            f.determination_type.as_deref(),
            f.determination_value.as_deref(),
        ) {
            (Some(kind), Some(name)) if !name.is_empty() => format!("{kind} ({name})"),
            (Some(kind), _) => kind.to_string(),
            _ => "no verdict".to_string(),
        };
        let seen = self
            .organization
            .as_ref()
            .and_then(|o| o.org_prevalence)
            .unwrap_or(0);
        format!(
            "file {}: {verdict}, seen on {seen} devices in the organisation, {} alerts",
            f.sha1.as_deref().unwrap_or("?"),
            self.alert_count
        )
    }
}

#[async_trait::async_trait]
impl Tool for FileInfoTool {
    type Params = FileParams;
    type Output = FileOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_file_info",
            title: "Get file information",
            description: "Looks a file up by SHA-1 or SHA-256: Microsoft's verdict, signer, size, global \
                         prevalence, devices in this organisation that saw it, and related alerts.",
            toolset: Toolset::Entities,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: FileParams,
    ) -> Result<FileOutput, ToolError> {
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let defender = &context.services.defender;
        let hash = &params.hash;
        let file = defender.get_file(&tenant, hash).await.map_err(|error| {
            common::not_found(error, || {
                format!("Defender has no record of file {}", hash.as_str())
            })
        })?;
        // get-file-related-alerts.md: alerts are looked up by SHA-1 only, so a SHA-256 is
        // first resolved to the file's SHA-1.
        let sha1 = match file
            .sha1
            .as_deref()
            .map(|s| FileHash::try_from(s.to_string()))
        {
            Some(Ok(sha1)) if sha1.is_sha1() => sha1,
            _ if hash.is_sha1() => hash.clone(),
            _ => {
                return Err(ToolError::Api(ApiError::Decode {
                    api: Api::Defender,
                    detail: format!(
                        "Defender's record of file {} carries no SHA-1 to look its alerts up by",
                        hash.as_str()
                    ),
                }));
            }
        };
        let (stats, alerts) = tokio::join!(
            defender.file_stats(&tenant, &sha1),
            defender.file_alerts(&tenant, &sha1)
        );
        let organization = match stats {
            Ok(stats) => Some(stats),
            Err(error) if error.is_not_found() => None,
            Err(error) => return Err(error.into()),
        };
        let mut alerts = alerts?;
        let alert_count = alerts.len();
        alerts.truncate(MAX_ALERTS);
        let Rows { rows, cut } = rows::rows(alerts, None);
        Ok(FileOutput {
            tenant_id: tenant,
            file,
            organization,
            alert_count,
            alerts: rows,
            cut,
        })
    }
}

#[derive(Serialize, JsonSchema)]
struct SightingOutput {
    tenant_id: TenantId,
    /// The IP address or domain looked up.
    entity: String,
    organization: IpStats,
}

impl Summary for SightingOutput {
    fn summary(&self) -> String {
        let o = &self.organization;
        match o.org_prevalence {
            Some(count) if count > 0 => format!(
                "{}: contacted by {count} devices in the organisation, first {} last {}",
                self.entity,
                o.org_first_seen.map_or("?".into(), args::rfc3339),
                o.org_last_seen.map_or("?".into(), args::rfc3339)
            ),
            _ => format!(
                "{}: no device in the organisation contacted it",
                self.entity
            ),
        }
    }
}

struct IpInfo;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IpParams {
    tenant_id: Option<TenantId>,
    /// An IPv4 or IPv6 address.
    ip: String,
}

#[async_trait::async_trait]
impl Tool for IpInfo {
    type Params = IpParams;
    type Output = SightingOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_ip_info",
            title: "Get IP address information",
            description: "How many devices in the organisation communicated with an IP address, and when first and last.",
            toolset: Toolset::Entities,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: IpParams,
    ) -> Result<SightingOutput, ToolError> {
        let ip: std::net::IpAddr = params.ip.trim().parse().map_err(|_| {
            ToolError::invalid(format!(
                "'{}' is not an IPv4 or IPv6 address",
                params.ip.trim().chars().take(64).collect::<String>()
            ))
        })?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let organization = context.services.defender.ip_stats(&tenant, ip).await?;
        Ok(SightingOutput {
            tenant_id: tenant,
            entity: ip.to_string(),
            organization,
        })
    }
}

struct DomainInfo;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DomainParams {
    tenant_id: Option<TenantId>,
    /// A domain name such as evil.example.com (no scheme, no path).
    domain: String,
}

#[async_trait::async_trait]
impl Tool for DomainInfo {
    type Params = DomainParams;
    type Output = SightingOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "mde_get_domain_info",
            title: "Get domain information",
            description: "How many devices in the organisation communicated with a domain, and when first and last.",
            toolset: Toolset::Entities,
            effect: Effect::Read,
            tier: Tier::Reader,
        }
    }

    async fn call(
        &self,
        context: &ToolContext,
        params: DomainParams,
    ) -> Result<SightingOutput, ToolError> {
        let domain = IndicatorType::DomainName
            .check(&params.domain)
            .map_err(|reason| {
                ToolError::invalid(format!(
                    "domain '{}': {reason}",
                    params.domain.trim().chars().take(120).collect::<String>()
                ))
            })?;
        let tenant = common::tenant(context, params.tenant_id.as_ref())?;
        let organization: DomainStats = context
            .services
            .defender
            .domain_stats(&tenant, &domain)
            .await?;
        Ok(SightingOutput {
            tenant_id: tenant,
            entity: domain,
            organization,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Harness;

    #[tokio::test]
    async fn malformed_entities_are_refused_before_defender_is_asked() {
        let harness = Harness::start().await;
        let tenant = harness.contoso();
        for (tool, arguments, expected) in [
            (
                "file",
                json!({"tenant_id": tenant, "hash": "not-a-hash"}),
                "not-a-hash",
            ),
            (
                "ip",
                json!({"tenant_id": tenant, "ip": "300.1.2.3"}),
                "300.1.2.3",
            ),
            (
                "domain",
                json!({"tenant_id": tenant, "domain": "https://evil.example/x"}),
                "evil.example",
            ),
        ] {
            let message = match tool {
                "file" => harness.refusal(&FileInfoTool, arguments).await,
                "ip" => harness.refusal(&IpInfo, arguments).await,
                _ => harness.refusal(&DomainInfo, arguments).await,
            };
            assert!(message.contains(expected), "{tool}: {message}");
        }
        assert_eq!(
            harness
                .sandbox
                .stats()
                .requests
                .iter()
                .filter(|r| r.path_template.starts_with("/defender"))
                .count(),
            0,
            "nothing reached Defender"
        );
    }
}
