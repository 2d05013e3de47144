//! Which tools one connection asks for, read from its URL and headers. Clients that cannot set
//! headers (Copilot Studio, ChatGPT) choose by URL, the way GitHub's MCP server does:
//!
//! - `/api/mcp`: the default set; `/api/mcp/readonly`: the same, read tools only;
//! - `/api/mcp/x/{names}` and `/api/mcp/x/{names}/readonly`: the named toolsets (comma list);
//! - headers `X-MCP-Toolsets: {names}` and `X-MCP-Readonly: true`, on any of those URLs.
//!
//! This layer knows the syntax only; what the names mean is the MCP surface's, handed in as a
//! resolver, so transport never learns a tool.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const MCP_PATH: &str = "/api/mcp";
pub const TOOLSETS_HEADER: &str = "x-mcp-toolsets";
pub const READONLY_HEADER: &str = "x-mcp-readonly";

/// A connection's request for toolsets, before the names are checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionRequest {
    /// The list after `/api/mcp/x/`.
    pub path_toolsets: Option<String>,
    /// The `X-MCP-Toolsets` header.
    pub header_toolsets: Option<String>,
    /// A URL ending in `/readonly`, or `X-MCP-Readonly: true`.
    pub read_only: bool,
}

/// Turns a [`ConnectionRequest`] into what the MCP server reads from the request extensions,
/// or a message naming what was wrong and what is accepted.
pub type Resolver<C> = Arc<dyn Fn(&ConnectionRequest) -> Result<C, String> + Send + Sync>;

/// Why a URL or header is not a connection this server serves.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    Path(String),
    Header(String),
}

/// Reads the connection request from `path` (the whole path, `/api/mcp` included) and headers.
pub fn parse(path: &str, headers: &HeaderMap) -> Result<ConnectionRequest, Malformed> {
    let rest = path.strip_prefix(MCP_PATH).unwrap_or(path);
    let rest = rest.trim_end_matches('/');
    let (path_toolsets, path_read_only) = match rest.strip_prefix("/x/") {
        _ if rest.is_empty() => (None, false),
        _ if rest == "/readonly" => (None, true),
        Some(list) => {
            let (list, read_only) = match list.strip_suffix("/readonly") {
                Some(list) => (list, true),
                None => (list, false),
            };
            // Commas are allowed in a path, but some clients encode them anyway.
            let list = list.replace("%2C", ",").replace("%2c", ",");
            if list.is_empty() || list.contains('/') {
                return Err(unknown_path(path));
            }
            (Some(list), read_only)
        }
        None => return Err(unknown_path(path)),
    };
    let header = |name: &str| -> Result<Option<String>, Malformed> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|text| Some(text.trim().to_string()))
                .map_err(|_| Malformed::Header(format!("the {name} header is not ASCII text"))),
        }
    };
    let header_read_only = match header(READONLY_HEADER)?.as_deref() {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") || value == "1" => true,
        Some(value) if value.eq_ignore_ascii_case("false") || value == "0" => false,
        Some(value) => {
            return Err(Malformed::Header(format!(
                "X-MCP-Readonly is '{value}'; accepted: true or false"
            )));
        }
    };
    Ok(ConnectionRequest {
        path_toolsets,
        header_toolsets: header(TOOLSETS_HEADER)?,
        read_only: path_read_only || header_read_only,
    })
}

fn unknown_path(path: &str) -> Malformed {
    Malformed::Path(format!(
        "no MCP endpoint at {path}; this server serves /api/mcp, /api/mcp/readonly, \
         /api/mcp/x/{{toolsets}} and /api/mcp/x/{{toolsets}}/readonly ({{toolsets}}: names separated by commas)"
    ))
}

/// The axum middleware in front of the MCP service (inside the identity check): resolves the
/// connection and puts the result in the request extensions, or refuses the request.
pub async fn resolve<C: Clone + Send + Sync + 'static>(
    State(resolver): State<Resolver<C>>,
    mut request: Request,
    next: Next,
) -> Response {
    let parsed = parse(request.uri().path(), request.headers());
    let resolved = match parsed {
        Ok(connection) => resolver(&connection).map_err(|message| {
            // A name in the URL that does not exist is a URL that does not exist.
            let status = if connection.path_toolsets.is_some() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, message)
        }),
        Err(Malformed::Path(message)) => Err((StatusCode::NOT_FOUND, message)),
        Err(Malformed::Header(message)) => Err((StatusCode::BAD_REQUEST, message)),
    };
    match resolved {
        Ok(scope) => {
            request.extensions_mut().insert(scope);
            next.run(request).await
        }
        Err((status, message)) => {
            tracing::info!(path = %request.uri().path(), %message, "MCP connection refused");
            let body = json!({ "error": "unknown_connection", "error_description": message });
            (status, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<ConnectionRequest, Malformed> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        parse(path, &map)
    }

    #[test]
    fn urls_name_toolsets_and_read_only() {
        assert_eq!(
            request("/api/mcp", &[]).unwrap(),
            ConnectionRequest::default()
        );
        assert_eq!(
            request("/api/mcp/", &[]).unwrap(),
            ConnectionRequest::default()
        );
        assert!(request("/api/mcp/readonly", &[]).unwrap().read_only);
        let named = request("/api/mcp/x/hunts,response/readonly", &[]).unwrap();
        assert_eq!(named.path_toolsets.as_deref(), Some("hunts,response"));
        assert!(named.read_only);
        let encoded = request("/api/mcp/x/hunts%2Cresponse", &[]).unwrap();
        assert_eq!(encoded.path_toolsets.as_deref(), Some("hunts,response"));
        assert!(!encoded.read_only);
    }

    #[test]
    fn headers_name_toolsets_and_read_only() {
        let named = request(
            "/api/mcp",
            &[("x-mcp-toolsets", " hunts "), ("x-mcp-readonly", "TRUE")],
        )
        .unwrap();
        assert_eq!(named.header_toolsets.as_deref(), Some("hunts"));
        assert!(named.read_only);
        let Err(Malformed::Header(message)) = request("/api/mcp", &[("x-mcp-readonly", "yes")])
        else {
            panic!("yes is not a boolean");
        };
        assert!(message.contains("true or false"), "{message}");
    }

    #[test]
    fn other_paths_are_refused_with_the_accepted_forms() {
        for path in [
            "/api/mcp/x",
            "/api/mcp/x/",
            "/api/mcp/tools",
            "/api/mcp/x/a/b",
            "/api/mcp/readonly/x/hunts",
        ] {
            let Err(Malformed::Path(message)) = request(path, &[]) else {
                panic!("{path} should be refused");
            };
            assert!(message.contains("/api/mcp/x/{toolsets}"), "{message}");
        }
    }
}
