//! The approval page (`function-approvals`, route `approvals/{id}`): a small HTML page that
//! shows a person the plan of a destructive call (every target, the tenant, the requester, the
//! expiry) with Approve and Deny buttons, and records their decision.
//!
//! The person signs in as themselves: in Azure through App Service authentication (Easy Auth),
//! which passes the principal in `X-MS-CLIENT-PRINCIPAL` and which the platform announces with
//! `WEBSITE_AUTH_ENABLED`; without inbound authentication (`handler --sandbox`) there is no
//! sign-in and the local role decides. The page never trusts the principal header unless App
//! Service authentication is in front, since anyone reaching the app directly could send it.
//!
//! A decision is a form POST carrying a CSRF token bound to the record and the person; a POST
//! from another site (Origin / Sec-Fetch-Site), with a wrong token, or for a record already
//! decided is refused. The record changes under its ETag, so two decisions cannot both land.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use super::{ApprovalRecord, ApprovalState, ApprovalStore, Person};
use crate::audit::{ApprovalDecision, AuditRecord, Outcome, Storing};
use crate::auth::{Caller, signed_in_person};
use crate::config::{ApprovalConfig, InboundAuthConfig, InboundMode};
use crate::roles::Tier;
use crate::services::Services;
use crate::storage::StorageError;

/// The path of a record's page.
pub const ROUTE: &str = "/api/approvals/{id}";

/// How the page knows who is looking at it.
#[derive(Clone, Copy)]
enum SignIn {
    /// No inbound identity (`AUTH_INBOUND_MODE=none`): everyone is the local caller.
    Local(Tier),
    /// App Service authentication fronts the app.
    EasyAuth,
    /// Callers are identified by bearer tokens the browser does not have, and nothing signs
    /// people in: the page can show nothing and accept nothing.
    Unavailable,
}

#[derive(Clone)]
pub struct PageState {
    store: Arc<ApprovalStore>,
    key: Arc<Vec<u8>>,
    config: ApprovalConfig,
    inbound: InboundAuthConfig,
    sign_in: SignIn,
    services: Arc<Services>,
}

impl PageState {
    pub fn new(
        store: Arc<ApprovalStore>,
        key: Arc<Vec<u8>>,
        config: &ApprovalConfig,
        inbound: &InboundAuthConfig,
        services: Arc<Services>,
    ) -> Self {
        let sign_in = match inbound.mode {
            InboundMode::None { local_role } => SignIn::Local(local_role),
            InboundMode::EasyAuth => SignIn::EasyAuth,
            InboundMode::Entra if config.page_sign_in => SignIn::EasyAuth,
            InboundMode::Entra => SignIn::Unavailable,
        };
        Self {
            store,
            key,
            config: config.clone(),
            inbound: inbound.clone(),
            sign_in,
            services,
        }
    }
}

pub fn router(state: PageState) -> Router {
    Router::new()
        .route(ROUTE, get(show).post(decide))
        .with_state(state)
}

/// What a person may do with a record.
#[derive(Debug, PartialEq, Eq)]
enum Allowed {
    ApproveOrDeny,
    /// The requester under the four-eyes rule may withdraw the request, not approve it.
    DenyOnly(String),
    Nothing(String),
}

/// Who may decide: the requester (unless a second person must approve), anyone with the
/// approver role, or an Admin.
fn allowed(record: &ApprovalRecord, person: &Caller, approver_role: &str) -> Allowed {
    let requester = person.subject == record.requester.subject;
    let approver =
        person.roles.iter().any(|role| role == approver_role) || person.tier == Some(Tier::Admin);
    match (record.second_person, requester, approver) {
        (true, true, _) => Allowed::DenyOnly(format!(
            "A second person must approve this call (APPROVAL_SECOND_PERSON), and you asked for it: you can deny it, \
             but someone else with the {approver_role} role or Admin must approve it."
        )),
        (_, _, true) | (false, true, _) => Allowed::ApproveOrDeny,
        (true, false, false) => Allowed::Nothing(format!(
            "Approving someone else's call needs the {approver_role} app role or Admin; you have neither."
        )),
        (false, false, false) => Allowed::Nothing(format!(
            "Only the person who asked for this call, someone with the {approver_role} app role, or an Admin can decide it."
        )),
    }
}

fn csrf_token(key: &[u8], id: &str, person: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"approval-page\n");
    mac.update(id.as_bytes());
    mac.update(b"\n");
    mac.update(person.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// Constant-time comparison of two tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A page answer: no caching, no framing, no scripts, forms only to this site.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} - Defender XDR and Sentinel MCP</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on the
        // decision POST, and the page could not tell its own form from another site's.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
main{max-width:60rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%;margin:1rem 0}\
th,td{border:1px solid #bbb;padding:.4rem .6rem;text-align:left;vertical-align:top}\
caption{text-align:left;font-weight:600;padding:.4rem 0}dt{font-weight:600}dd{margin:0 0 .5rem 0}\
.status{padding:.6rem .8rem;border-left:4px solid #555;background:#eee}\
.refused{border-color:#a4262c;background:#fde7e9}.done{border-color:#107c10;background:#dff6dd}\
button{font-size:1rem;padding:.6rem 1.4rem;margin-right:1rem;border-radius:4px;border:2px solid #1b1b1b;cursor:pointer}\
button[value=approve]{background:#a4262c;color:#fff;border-color:#a4262c}\
button:focus{outline:3px solid #0078d4;outline-offset:2px}pre{white-space:pre-wrap;word-break:break-all;background:#f0f0f0;padding:.6rem}";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn notice(status: StatusCode, title: &str, class: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"status {class}\" role=\"alert\">{}</p>",
            escape(title),
            escape(message)
        ),
    )
}

/// Who is looking, or the page that says why nobody can be.
fn person(state: &PageState, headers: &HeaderMap, id: &str) -> Result<Caller, Box<Response>> {
    match state.sign_in {
        SignIn::Local(tier) => Ok(Caller::local(tier)),
        SignIn::Unavailable => Err(Box::new(notice(
            StatusCode::SERVICE_UNAVAILABLE,
            "Approval page unavailable",
            "refused",
            "This page needs App Service authentication in front of the app, so that people sign in as themselves, and \
             it is not enabled (WEBSITE_AUTH_ENABLED). Nobody can approve here until an administrator enables it.",
        ))),
        SignIn::EasyAuth => match signed_in_person(headers, &state.inbound) {
            Ok(person) => Ok(person),
            Err(crate::auth::Refusal::NoEasyAuthPrincipal) => {
                let login = format!("/.auth/login/aad?post_login_redirect_uri=/api/approvals/{id}");
                let mut response = page(
                    StatusCode::UNAUTHORIZED,
                    "Sign in to decide",
                    &format!(
                        "<h1>Sign in to decide</h1>\n<p class=\"status\">Sign in with your own work account to see and \
                         decide this request.</p>\n<p><a href=\"{}\">Sign in</a></p>",
                        escape(&login)
                    ),
                );
                if let Ok(value) = HeaderValue::from_str(&login) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                Err(Box::new(response))
            }
            Err(refusal) => Err(Box::new(notice(
                StatusCode::FORBIDDEN,
                "Not signed in",
                "refused",
                &refusal.to_string(),
            ))),
        },
    }
}

async fn load(
    state: &PageState,
    id: &str,
) -> Result<(ApprovalRecord, crate::storage::ETag), Box<Response>> {
    match state.store.get(id).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Box::new(notice(
            StatusCode::NOT_FOUND,
            "No such approval",
            "refused",
            "There is no approval request with this id. Links are copied from the tool's APPROVAL REQUIRED answer.",
        ))),
        Err(error) => Err(Box::new(notice(
            StatusCode::SERVICE_UNAVAILABLE,
            "Approval unavailable",
            "refused",
            &format!("The approval request could not be read ({error}); try again shortly."),
        ))),
    }
}

async fn show(
    State(state): State<PageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match person(&state, &headers, &id) {
        Ok(person) => person,
        Err(response) => return *response,
    };
    let (record, _) = match load(&state, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    render(&state, &record, &viewer, None)
}

/// The record's page: the plan, who asked, the tenant, the expiry, and the decision form when
/// this person may decide now.
fn render(
    state: &PageState,
    record: &ApprovalRecord,
    viewer: &Caller,
    flash: Option<(&str, &str)>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let mut body = format!("<h1>Approve: {}</h1>\n", escape(&record.title));
    if let Some((class, message)) = flash {
        let _ = writeln!(
            body,
            "<p class=\"status {class}\" role=\"status\">{}</p>",
            escape(message)
        );
    }
    let status = match record.state {
        ApprovalState::Pending if now >= record.expires => {
            format!(
                "Expired at {} without a decision; nothing was done.",
                rfc3339(record.expires)
            )
        }
        ApprovalState::Pending => {
            format!("Waiting for a decision until {}.", rfc3339(record.expires))
        }
        ApprovalState::Approved => format!(
            "Approved by {} at {}; the requester's client can now run it once.",
            record.decided_by.as_ref().map_or("someone", Person::label),
            record.decided_at.map(rfc3339).unwrap_or_default()
        ),
        ApprovalState::Denied => format!(
            "Denied by {} at {}; nothing was done.",
            record.decided_by.as_ref().map_or("someone", Person::label),
            record.decided_at.map(rfc3339).unwrap_or_default()
        ),
        ApprovalState::Used => format!(
            "Approved by {} and carried out at {}.",
            record.decided_by.as_ref().map_or("someone", Person::label),
            record.used_at.map(rfc3339).unwrap_or_default()
        ),
    };
    if flash.is_none() {
        let _ = writeln!(
            body,
            "<p class=\"status\" role=\"status\">{}</p>",
            escape(&status)
        );
    }
    body.push_str("<dl>\n");
    let mut item = |term: &str, value: String| {
        let _ = writeln!(body, "<dt>{term}</dt><dd>{value}</dd>");
    };
    item("What", escape(&record.plan.action));
    item("Tool", format!("<code>{}</code>", escape(&record.tool)));
    if let Some(tenant) = &record.plan.tenant {
        item(
            "Tenant",
            format!(
                "{} <small>({})</small>",
                escape(&tenant.display_name),
                escape(&tenant.id)
            ),
        );
    }
    item("Requested by", escape(record.requester.label()));
    item("Asked at", escape(&rfc3339(record.created)));
    item("Decide before", escape(&rfc3339(record.expires)));
    if record.second_person {
        item(
            "Four eyes",
            "A second person, not the requester, must approve.".to_string(),
        );
    }
    body.push_str("</dl>\n");
    if !record.plan.targets.is_empty() {
        let _ = writeln!(
            body,
            "<table>\n<caption>{} target(s)</caption>\n<thead><tr><th scope=\"col\">Target</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Id</th><th scope=\"col\">Details</th><th scope=\"col\">Change</th></tr></thead>\n<tbody>",
            record.plan.targets.len()
        );
        for target in &record.plan.targets {
            let facts: Vec<String> = target
                .facts
                .iter()
                .map(|(label, value)| format!("{}: {}", escape(label), escape(value)))
                .collect();
            let change = match &target.change.before {
                Some(before) => {
                    format!("{} &rarr; {}", escape(before), escape(&target.change.after))
                }
                None => escape(&target.change.after),
            };
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td><code>{}</code></td><td>{}</td><td>{change}</td></tr>",
                escape(target.label()),
                escape(&target.kind),
                escape(&target.id),
                facts.join("<br>")
            );
        }
        body.push_str("</tbody>\n</table>\n");
    }
    if !record.plan.notes.is_empty() {
        body.push_str("<h2>Please note</h2>\n<ul>\n");
        for note in &record.plan.notes {
            let _ = writeln!(body, "<li>{}</li>", escape(note));
        }
        body.push_str("</ul>\n");
    }
    let arguments = serde_json::to_string_pretty(&record.arguments).unwrap_or_default();
    let _ = writeln!(
        body,
        "<h2>Arguments</h2>\n<pre>{}</pre>",
        escape(&arguments)
    );
    if record.open_for_decision(now) {
        match allowed(record, viewer, &state.inbound.roles.approver) {
            Allowed::Nothing(why) => {
                let _ = writeln!(
                    body,
                    "<p class=\"status refused\" role=\"alert\">{}</p>",
                    escape(&why)
                );
            }
            allowed => {
                let token = csrf_token(&state.key, &record.id, &viewer.subject);
                let _ = writeln!(
                    body,
                    "<h2>Your decision</h2>\n<p>Signed in as {}.</p>\n<form method=\"post\" action=\"/api/approvals/{}\">\n\
                     <input type=\"hidden\" name=\"csrf\" value=\"{token}\">",
                    escape(viewer.as_str()),
                    escape(&record.id)
                );
                if let Allowed::DenyOnly(why) = &allowed {
                    let _ = writeln!(body, "<p class=\"status\">{}</p>", escape(why));
                } else {
                    body.push_str("<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n");
                }
                body.push_str("<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>\n");
            }
        }
    }
    page(StatusCode::OK, &format!("Approve: {}", record.title), &body)
}

#[derive(serde::Deserialize)]
struct DecisionForm {
    action: Option<String>,
    csrf: Option<String>,
}

/// Refuses a POST another site made the browser send.
fn cross_site(state: &PageState, headers: &HeaderMap) -> Option<String> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!(
            "the browser says this request came from another site (Sec-Fetch-Site: {site})"
        ));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    let own = state
        .config
        .public_url
        .as_ref()
        .map(|url| url.origin().ascii_serialization());
    match own {
        Some(own) if own == origin => None,
        _ => Some(format!(
            "the request came from {origin}, not from this page"
        )),
    }
}

async fn decide(
    State(state): State<PageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let viewer = match person(&state, &headers, &id) {
        Ok(person) => person,
        Err(response) => return *response,
    };
    if let Some(reason) = cross_site(&state, &headers) {
        return notice(
            StatusCode::FORBIDDEN,
            "Refused",
            "refused",
            &format!("Decision refused: {reason}. Nothing was changed."),
        );
    }
    let form: DecisionForm = match serde_urlencoded_form(&body) {
        Ok(form) => form,
        Err(message) => return notice(StatusCode::BAD_REQUEST, "Refused", "refused", &message),
    };
    let approve = match form.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        other => {
            return notice(
                StatusCode::BAD_REQUEST,
                "Refused",
                "refused",
                &format!(
                    "The form's action must be approve or deny, not {other:?}. Nothing was changed."
                ),
            );
        }
    };
    let expected = csrf_token(&state.key, &id, &viewer.subject);
    if !form
        .csrf
        .as_deref()
        .is_some_and(|token| same_token(token, &expected))
    {
        return notice(
            StatusCode::FORBIDDEN,
            "Refused",
            "refused",
            "Decision refused: the form's token does not match this request and this person. Open the page again and \
             decide there. Nothing was changed.",
        );
    }
    let (mut record, etag) = match load(&state, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let now = OffsetDateTime::now_utc();
    if record.state != ApprovalState::Pending {
        let mut response = render(
            &state,
            &record,
            &viewer,
            Some((
                "refused",
                "This request was already decided; a decision is made once.",
            )),
        );
        *response.status_mut() = StatusCode::CONFLICT;
        return response;
    }
    if now >= record.expires {
        let mut response = render(
            &state,
            &record,
            &viewer,
            Some((
                "refused",
                "This request expired; nothing was done. Ask again from the client.",
            )),
        );
        *response.status_mut() = StatusCode::GONE;
        return response;
    }
    match allowed(&record, &viewer, &state.inbound.roles.approver) {
        Allowed::ApproveOrDeny => {}
        Allowed::DenyOnly(_) if !approve => {}
        Allowed::DenyOnly(why) | Allowed::Nothing(why) => {
            let mut response = render(&state, &record, &viewer, Some(("refused", &why)));
            *response.status_mut() = StatusCode::FORBIDDEN;
            return response;
        }
    }
    record.state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Denied
    };
    record.decided_by = Some(Person {
        subject: viewer.subject.clone(),
        name: viewer.name.clone(),
    });
    record.decided_at = Some(now);
    match state.store.replace(&record, &etag).await {
        Ok(()) => {}
        Err(StorageError::Conflict { .. }) => {
            return notice(
                StatusCode::CONFLICT,
                "Refused",
                "refused",
                "Someone decided this request at the same moment; open the page again to see their decision.",
            );
        }
        Err(error) => {
            return notice(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not recorded",
                "refused",
                &format!(
                    "The decision could not be stored ({error}); nothing was changed. Try again."
                ),
            );
        }
    }
    audit_decision(&state, &record, &viewer, approve).await;
    let message = if approve {
        format!(
            "Approved. The requester's client can now run it once, until {}.",
            record.usable_until().map(rfc3339).unwrap_or_default()
        )
    } else {
        "Denied. Nothing will be done.".to_string()
    };
    render(&state, &record, &viewer, Some(("done", &message)))
}

fn serde_urlencoded_form(body: &[u8]) -> Result<DecisionForm, String> {
    let mut form = DecisionForm {
        action: None,
        csrf: None,
    };
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "action" => form.action = Some(value.into_owned()),
            "csrf" => form.csrf = Some(value.into_owned()),
            _ => {}
        }
    }
    if form.action.is_none() && form.csrf.is_none() {
        return Err("The decision must be sent as the page's form (action and csrf fields). Nothing was changed.".into());
    }
    Ok(form)
}

/// The decision in the audit trail: who decided which request, for which tool and tenant.
async fn audit_decision(
    state: &PageState,
    record: &ApprovalRecord,
    person: &Caller,
    approve: bool,
) {
    let entry = AuditRecord {
        id: uuid::Uuid::new_v4().to_string(),
        time: OffsetDateTime::now_utc(),
        caller: person.subject.clone(),
        caller_name: person.name.clone(),
        caller_tenant: person.tenant.as_ref().map(ToString::to_string),
        roles: person.roles.clone(),
        tool: record.tool.clone(),
        tier: Tier::parse(&record.tier),
        tenant: record.plan.tenant.as_ref().map(|t| t.id.clone()),
        arguments: record.arguments.clone(),
        outcome: Outcome::Ok,
        error: None,
        duration_ms: 0,
        action_ids: Vec::new(),
        approval: Some(if approve {
            ApprovalDecision::ApprovedOnPage
        } else {
            ApprovalDecision::Declined
        }),
        approval_id: Some(record.id.clone()),
        approver: Some(person.as_str().to_string()),
    };
    state
        .services
        .audit
        .append(entry, Storing::BeforeAnswer)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::{Plan, PlanTenant};

    fn record(second_person: bool) -> ApprovalRecord {
        let now = OffsetDateTime::now_utc();
        let mut plan = Plan::action("Isolate devices");
        plan.tenant = Some(PlanTenant {
            id: "t".into(),
            display_name: "Contoso".into(),
        });
        ApprovalRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tool: "mde_isolate_machines".into(),
            title: "Isolate devices".into(),
            tier: "responder".into(),
            requester: Person {
                subject: "alice".into(),
                name: None,
            },
            arguments_digest: String::new(),
            arguments: serde_json::json!({}),
            plan,
            plan_digest: String::new(),
            second_person,
            created: now,
            expires: now + time::Duration::minutes(5),
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            used_at: None,
        }
    }

    fn person(subject: &str, roles: &[&str], tier: Option<Tier>) -> Caller {
        Caller {
            subject: subject.into(),
            name: None,
            tenant: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            tier,
        }
    }

    #[test]
    fn four_eyes_keeps_the_requester_to_denying_and_needs_an_approver() {
        let record = record(true);
        let alice = person("alice", &["MCP.Responder"], Some(Tier::Responder));
        assert!(matches!(
            allowed(&record, &alice, "MCP.Approver"),
            Allowed::DenyOnly(_)
        ));
        let bob = person("bob", &["MCP.Responder"], Some(Tier::Responder));
        assert!(matches!(
            allowed(&record, &bob, "MCP.Approver"),
            Allowed::Nothing(_)
        ));
        let carol = person("carol", &["MCP.Approver"], None);
        assert_eq!(
            allowed(&record, &carol, "MCP.Approver"),
            Allowed::ApproveOrDeny
        );
        let admin = person("dave", &["MCP.Admin"], Some(Tier::Admin));
        assert_eq!(
            allowed(&record, &admin, "MCP.Approver"),
            Allowed::ApproveOrDeny
        );
    }

    #[test]
    fn without_four_eyes_the_requester_decides_and_strangers_do_not() {
        let record = record(false);
        let alice = person("alice", &["MCP.Responder"], Some(Tier::Responder));
        assert_eq!(
            allowed(&record, &alice, "MCP.Approver"),
            Allowed::ApproveOrDeny
        );
        let bob = person("bob", &["MCP.Reader"], Some(Tier::Reader));
        assert!(matches!(
            allowed(&record, &bob, "MCP.Approver"),
            Allowed::Nothing(_)
        ));
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_record_and_the_person() {
        let key = b"k".repeat(32);
        let token = csrf_token(&key, "id-1", "alice");
        assert!(same_token(&token, &csrf_token(&key, "id-1", "alice")));
        assert!(!same_token(&token, &csrf_token(&key, "id-2", "alice")));
        assert!(!same_token(&token, &csrf_token(&key, "id-1", "bob")));
    }

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            escape("<script>\"x\"&'y'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
    }
}
