//! Which tools one connection sees, within what the deployment offers (`MCP_TOOLSETS`,
//! `MCP_READ_ONLY`): the URL `/api/mcp/x/{toolsets}[/readonly]`, or the headers `X-MCP-Toolsets`
//! and `X-MCP-Readonly`, named in the vocabulary of [`crate::toolsets`].
//!
//! A connection that names no toolset gets the triage set: the read tools an analyst starts
//! with, small enough for any model's context, plus `toolsets_list` to find the rest.

pub use crate::toolsets::{Selection, Toolset, ToolsetGroup, UnknownToolsets};

/// What one connection asked for, already checked against the known names.
#[derive(Debug, Clone)]
pub struct ConnectionScope {
    /// The URL's and the header's lists; a tool must be in each. Neither: the triage set.
    selections: Vec<Selection>,
    /// The URL ends in `/readonly` or the header says `X-MCP-Readonly: true`.
    pub read_only: bool,
    /// How the connection was named, for messages (`/api/mcp/x/hunts`, `X-MCP-Toolsets: ...`).
    described: String,
}

impl Default for ConnectionScope {
    /// Plain `/api/mcp`.
    fn default() -> Self {
        Self {
            selections: vec![Selection::triage()],
            read_only: false,
            described: "plain /api/mcp (the triage set)".into(),
        }
    }
}

impl ConnectionScope {
    /// `path` is the list after `/api/mcp/x/`, `header` the `X-MCP-Toolsets` value.
    pub fn resolve(
        path: Option<&str>,
        header: Option<&str>,
        read_only: bool,
    ) -> Result<Self, UnknownToolsets> {
        let mut selections = Vec::new();
        let mut described = Vec::new();
        if let Some(list) = path {
            selections.push(Selection::parse(list)?);
            described.push(format!("/api/mcp/x/{list}"));
        }
        if let Some(list) = header {
            selections.push(Selection::parse(list)?);
            described.push(format!("X-MCP-Toolsets: {list}"));
        }
        if selections.is_empty() {
            return Ok(Self {
                read_only,
                ..Self::default()
            });
        }
        Ok(Self {
            selections,
            read_only,
            described: described.join(" with "),
        })
    }

    pub fn contains(&self, toolset: Toolset, in_triage: bool) -> bool {
        self.selections
            .iter()
            .all(|selection| selection.contains(toolset, in_triage))
    }

    pub fn touches(&self, toolset: Toolset) -> bool {
        self.selections
            .iter()
            .all(|selection| selection.touches(toolset))
    }

    pub fn described(&self) -> &str {
        &self.described
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_the_intersection_of_what_it_names() {
        let scope =
            ConnectionScope::resolve(Some("defender"), Some("response,hunts"), false).unwrap();
        assert!(scope.contains(Toolset::Response, false));
        assert!(
            !scope.contains(Toolset::Hunts, false),
            "the URL does not name hunts"
        );
        assert!(
            !scope.contains(Toolset::Devices, true),
            "the header does not name devices"
        );
        let plain = ConnectionScope::resolve(None, None, true).unwrap();
        assert!(plain.read_only);
        assert!(plain.contains(Toolset::Devices, true));
        assert!(!plain.contains(Toolset::Devices, false));
    }
}
