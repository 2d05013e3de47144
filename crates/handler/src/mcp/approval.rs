//! Human approval for destructive tools, on a stateless, scaled-out app.
//!
//! A destructive call is validated and planned first (see the catalogue); only then is anyone
//! asked, and every approval is bound to the tool, the caller, the exact arguments and the
//! plan's digest. Three ways to ask, best first:
//!
//! - **The approval page** (`/api/approvals/{id}`, see [`crate::approvals`]): a durable record
//!   holds the plan; a person signs in there as themselves and approves or denies; the client
//!   calls again with `approval_id`. Clients with URL-mode elicitation open the page for the
//!   person (MRTR `input_required`); others show the URL. Required when a second person must
//!   approve (`APPROVAL_SECOND_PERSON`), since only the page knows who approves.
//! - **Form elicitation** (MRTR, SEP-2322): the client asks its user; the retry carries the
//!   answer and a sealed `requestState` bound as above.
//! - **Confirmation** (`APPROVAL_FALLBACK=confirm`): a preview and a sealed single-use token the
//!   client passes back. Nothing proves a person saw it: for laptops.
//!
//! Sealed state is HMAC-protected with a key every instance shares (`APPROVAL_SIGNING_KEY`);
//! tokens and elicitations are single use through create-if-absent markers in blob storage,
//! page approvals through the record's ETag.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequiredResult, InputResponses, JsonObject, RequestStateCodec,
    RequestStateError, SealOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::tool::Tier;
use crate::approvals::{ApprovalRecord, ApprovalState, ApprovalStore, Person, Plan};
use crate::auth::Caller;
use crate::config::{ApprovalConfig, ApprovalFallback, SecondPerson};
use crate::storage::StorageError;

pub use crate::audit::ApprovalDecision;

/// The argument a destructive tool takes back in the two-step confirmation.
pub const CONFIRMATION_ARGUMENT: &str = "confirmation_token";
/// The argument a destructive tool takes back after a person decided on the approval page.
pub const APPROVAL_ID_ARGUMENT: &str = "approval_id";
/// The key of the elicitation in `inputRequests` / `inputResponses`.
const INPUT_KEY: &str = "approval";
/// The boolean the person sets in the elicitation form.
const APPROVE_FIELD: &str = "approve";

/// What the client can show its user, from its declared capabilities and protocol version.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAsks {
    pub form: bool,
    pub url: bool,
}

/// How the call was let through, for the audit record.
#[derive(Debug, Clone)]
pub struct Approved {
    pub decision: ApprovalDecision,
    pub approval_id: Option<String>,
    /// Who approved, when it was someone on the page.
    pub approver: Option<String>,
}

/// What to do with a destructive call.
pub enum Gate {
    /// Approved: run the tool.
    Proceed(Approved),
    /// Ask the person first (MRTR).
    Ask {
        input: InputRequiredResult,
        decision: ApprovalDecision,
        approval_id: Option<String>,
    },
    /// Do not run; tell the model why (or what to show the person).
    Stop {
        message: String,
        decision: ApprovalDecision,
        approval_id: Option<String>,
    },
}

/// What a call brings back that bears on approval, taken out of its arguments or its request.
#[derive(Default)]
pub struct Answer {
    pub confirmation_token: Option<String>,
    pub approval_id: Option<String>,
    pub request_state: Option<String>,
    pub input_responses: Option<InputResponses>,
}

/// One destructive call, validated and planned.
pub struct ApprovalRequest<'a> {
    pub tool: &'a str,
    pub title: &'a str,
    pub tier: Tier,
    pub caller: &'a Caller,
    /// The tool's arguments without the approval arguments.
    pub arguments: &'a JsonObject,
    /// The same, secrets redacted: what the page shows.
    pub shown_arguments: serde_json::Value,
    pub plan: &'a Plan,
    pub answer: Answer,
    pub client: ClientAsks,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    Elicitation,
    Confirmation,
    /// A URL elicitation of this approval page record.
    Page(String),
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    purpose: Purpose,
    plan_digest: String,
}

#[derive(Serialize)]
struct UsedMarker<'a> {
    tool: &'a str,
    caller: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    used_at: OffsetDateTime,
}

pub struct Approvals {
    codec: RequestStateCodec,
    /// The same key, for the page's CSRF tokens.
    key: Arc<Vec<u8>>,
    config: ApprovalConfig,
    store: Arc<ApprovalStore>,
}

#[derive(Debug, thiserror::Error)]
#[error("APPROVAL_SIGNING_KEY cannot be used: {0}")]
pub struct ApprovalKeyError(RequestStateError);

impl Approvals {
    pub fn new(
        config: &ApprovalConfig,
        store: Arc<ApprovalStore>,
    ) -> Result<Self, ApprovalKeyError> {
        let key: Vec<u8> = match &config.signing_key {
            Some(secret) => secret.secret().as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "APPROVAL_SIGNING_KEY is not set: approvals use a random key of this instance only, so on a scaled-out \
                     app an approval asked on one instance is refused on another; set the same key on every instance"
                );
                let mut key = vec![0u8; 32];
                rand::rng().fill(key.as_mut_slice());
                key
            }
        };
        Ok(Self {
            codec: RequestStateCodec::try_new(key.clone()).map_err(ApprovalKeyError)?,
            key: Arc::new(key),
            config: config.clone(),
            store,
        })
    }

    pub fn config(&self) -> &ApprovalConfig {
        &self.config
    }

    /// The key the approval page derives its CSRF tokens from.
    pub fn page_key(&self) -> Arc<Vec<u8>> {
        self.key.clone()
    }

    pub fn store(&self) -> &Arc<ApprovalStore> {
        &self.store
    }

    fn ttl(&self) -> Duration {
        self.config.ttl
    }

    pub async fn check(&self, request: ApprovalRequest<'_>) -> Gate {
        let binding = binding(&request);
        let plan_digest = request.plan.digest(request.tool);
        let second_person = self
            .config
            .second_person
            .applies(request.plan.targets.len());
        if let Some(id) = request.answer.approval_id.clone() {
            return self.redeem_page(&request, &id, &plan_digest).await;
        }
        if let Some(state) = request.answer.request_state.clone() {
            return self
                .answered(&request, &state, &binding, &plan_digest, second_person)
                .await;
        }
        if let Some(token) = request.answer.confirmation_token.clone() {
            if second_person {
                return self.second_person_only(&request);
            }
            return match self.open(&token, &binding, "confirmation token") {
                Ok(Sealed { nonce, purpose: Purpose::Confirmation, plan_digest: approved }) => {
                    if approved != plan_digest {
                        return plan_changed(&request);
                    }
                    self.redeem_marker(&request, &nonce, ApprovalDecision::ApprovedByConfirmation).await
                }
                Ok(_) => stop("this confirmation_token is not one this server issued for confirmation; call without it to get one".into()),
                Err(message) => stop(message),
            };
        }
        let page = self.page_base();
        if request.client.url && page.is_some() {
            return self
                .open_page(&request, &plan_digest, second_person, true)
                .await;
        }
        if second_person {
            return match page {
                Some(_) => self.open_page(&request, &plan_digest, true, false).await,
                None => self.second_person_only(&request),
            };
        }
        if request.client.form {
            return self.ask(&request, &binding, &plan_digest);
        }
        match self.config.fallback {
            ApprovalFallback::Refuse => stop(format!(
                "{} is destructive and needs a person's approval, but this client cannot show an approval prompt (MCP \
                 elicitation) and this server's policy (APPROVAL_FALLBACK=refuse) does not accept any other approval. \
                 Nothing was done. Use a client that supports elicitation, or ask an administrator.",
                request.tool
            )),
            ApprovalFallback::Confirm => self.confirmation(&request, &binding, &plan_digest),
            ApprovalFallback::Page => self.open_page(&request, &plan_digest, false, false).await,
        }
    }

    fn page_base(&self) -> Option<&Url> {
        self.config.public_url.as_ref()
    }

    /// The URL of an approval record's page.
    pub fn page_url(&self, id: &str) -> Option<String> {
        self.page_base()
            .map(|base| format!("{}/api/approvals/{id}", base.as_str().trim_end_matches('/')))
    }

    fn second_person_only(&self, request: &ApprovalRequest<'_>) -> Gate {
        let why = match self.config.second_person {
            SecondPerson::AboveTargets(limit) => format!("more than {limit} targets"),
            _ => "a destructive action".into(),
        };
        stop(format!(
            "{} needs a second person's approval ({why}, APPROVAL_SECOND_PERSON) on the approval page, and no other \
             approval counts{}. Nothing was done.",
            request.tool,
            if self.page_base().is_none() {
                "; this server has no public URL for the page (APPROVAL_PUBLIC_URL), so an administrator must set one"
            } else {
                ": call the tool again without confirmation_token to get the page"
            }
        ))
    }

    fn seal(
        &self,
        purpose: Purpose,
        binding: &[u8],
        plan_digest: &str,
    ) -> (String, OffsetDateTime) {
        let sealed = Sealed {
            nonce: uuid::Uuid::new_v4().to_string(),
            purpose,
            plan_digest: plan_digest.to_string(),
        };
        let options = SealOptions::new().associated_data(binding).ttl(self.ttl());
        // Serializing plain strings cannot fail; an empty token would simply not open.
        let token = self
            .codec
            .seal_json_with(&sealed, &options)
            .unwrap_or_default();
        (token, OffsetDateTime::now_utc() + self.ttl())
    }

    fn open(&self, token: &str, binding: &[u8], what: &str) -> Result<Sealed, String> {
        self.codec.open_json_with::<Sealed>(token.trim(), binding).map_err(|error| match error {
            RequestStateError::Expired => format!("the {what} has expired; call the tool again (without it) to be asked again. Nothing was done."),
            _ => format!(
                "the {what} does not match this call: it was issued for other arguments, another caller or another tool, \
                 or it was altered. Call the tool again without it to get a new approval. Nothing was done."
            ),
        })
    }

    fn ask(&self, request: &ApprovalRequest<'_>, binding: &[u8], plan_digest: &str) -> Gate {
        let (state, _) = self.seal(Purpose::Elicitation, binding, plan_digest);
        let schema = ElicitationSchema::from_json_schema(
            json!({
                "type": "object",
                "properties": {
                    APPROVE_FIELD: {
                        "type": "boolean",
                        "title": "Approve",
                        "description": "Tick to carry out exactly this action now."
                    }
                },
                "required": [APPROVE_FIELD]
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        let schema = match schema {
            Ok(schema) => schema,
            Err(error) => {
                return stop(format!(
                    "the approval prompt could not be built ({error}); nothing was done"
                ));
            }
        };
        let message = format!(
            "Approve {} ({})?\n\n{}",
            request.title,
            request.tool,
            request.plan.describe()
        );
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema: schema,
        };
        let inputs = [(
            INPUT_KEY.to_string(),
            InputRequest::Elicitation(ElicitRequest::new(params)),
        )]
        .into_iter()
        .collect();
        Gate::Ask {
            input: InputRequiredResult::new(Some(inputs), Some(state)),
            decision: ApprovalDecision::Requested,
            approval_id: None,
        }
    }

    /// Creates the durable record and answers with its page: as a URL elicitation the client
    /// opens, or as text with the URL and the `approval_id` to call back with.
    async fn open_page(
        &self,
        request: &ApprovalRequest<'_>,
        plan_digest: &str,
        second_person: bool,
        as_elicitation: bool,
    ) -> Gate {
        let now = OffsetDateTime::now_utc();
        let id = uuid::Uuid::new_v4().to_string();
        let record = ApprovalRecord {
            id: id.clone(),
            tool: request.tool.to_string(),
            title: request.title.to_string(),
            tier: request.tier.name().to_ascii_lowercase(),
            requester: Person {
                subject: request.caller.subject.clone(),
                name: request.caller.name.clone(),
            },
            arguments_digest: arguments_digest(request.arguments),
            arguments: request.shown_arguments.clone(),
            plan: request.plan.clone(),
            plan_digest: plan_digest.to_string(),
            second_person,
            created: now,
            expires: now + self.ttl(),
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            used_at: None,
        };
        if let Err(error) = self.store.create(&record).await {
            return stop(format!(
                "the approval request could not be stored ({error}), so no person can be asked; nothing was done"
            ));
        }
        let Some(url) = self.page_url(&id) else {
            return stop(
                "no public URL for the approval page (APPROVAL_PUBLIC_URL); nothing was done"
                    .into(),
            );
        };
        let expires = rfc3339(record.expires);
        let who = if second_person {
            "A second person (not the requester) with the approver role or Admin"
        } else {
            "A person"
        };
        if as_elicitation {
            let binding = binding(request);
            let (state, _) = self.seal(Purpose::Page(id.clone()), &binding, plan_digest);
            let params = ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: format!(
                    "{who} must approve {} on the approval page before {expires}:\n\n{}",
                    request.title,
                    request.plan.describe()
                ),
                url,
                elicitation_id: id.clone(),
            };
            let inputs = [(
                INPUT_KEY.to_string(),
                InputRequest::Elicitation(ElicitRequest::new(params)),
            )]
            .into_iter()
            .collect();
            return Gate::Ask {
                input: InputRequiredResult::new(Some(inputs), Some(state)),
                decision: ApprovalDecision::PageRequested,
                approval_id: Some(id),
            };
        }
        Gate::Stop {
            message: format!(
                "APPROVAL REQUIRED - nothing was done yet.\n\n{}\n\n{who} must open {url} , sign in, check the plan and \
                 approve or deny it before {expires}. Show the person this link; you cannot approve it yourself. After \
                 they approved, call {} again with exactly the same arguments plus \"{APPROVAL_ID_ARGUMENT}\": \"{id}\".",
                request.plan.describe(),
                request.tool
            ),
            decision: ApprovalDecision::PageRequested,
            approval_id: Some(id),
        }
    }

    async fn answered(
        &self,
        request: &ApprovalRequest<'_>,
        state: &str,
        binding: &[u8],
        plan_digest: &str,
        second_person: bool,
    ) -> Gate {
        let sealed = match self.open(state, binding, "approval") {
            Ok(sealed) => sealed,
            Err(message) => return stop(message),
        };
        let answer = request
            .answer
            .input_responses
            .as_ref()
            .and_then(|responses| responses.get(INPUT_KEY))
            .map(|answer| serde_json::from_value::<ElicitResult>(answer.clone()));
        let nonce = match sealed.purpose {
            Purpose::Page(id) => {
                if let Some(Ok(answer)) = &answer
                    && answer.action != ElicitationAction::Accept
                {
                    return declined(request, Some(id));
                }
                return self.redeem_page(request, &id, plan_digest).await;
            }
            Purpose::Confirmation => {
                return stop("the request state is not an approval prompt this server sent; nothing was done".into());
            }
            Purpose::Elicitation => sealed.nonce,
        };
        if second_person {
            return self.second_person_only(request);
        }
        if sealed.plan_digest != plan_digest {
            return plan_changed(request);
        }
        let answer = match answer {
            None => return stop("the retried call carries no answer to the approval prompt (inputResponses.approval); nothing was done".into()),
            Some(Err(error)) => {
                return stop(format!(
                    "the answer to the approval prompt is not an elicitation result ({error}); nothing was done"
                ));
            }
            Some(Ok(answer)) => answer,
        };
        let approved = answer.action == ElicitationAction::Accept
            && answer
                .content
                .as_ref()
                .and_then(|content| content.get(APPROVE_FIELD))
                .and_then(|v| v.as_bool())
                == Some(true);
        if !approved {
            return declined(request, None);
        }
        self.redeem_marker(request, &nonce, ApprovalDecision::ApprovedByElicitation)
            .await
    }

    fn confirmation(
        &self,
        request: &ApprovalRequest<'_>,
        binding: &[u8],
        plan_digest: &str,
    ) -> Gate {
        let (token, expires) = self.seal(Purpose::Confirmation, binding, plan_digest);
        Gate::Stop {
            message: format!(
                "CONFIRMATION REQUIRED - nothing was done yet.\n\n{}\n\nShow this to the person. Only if they confirm, call \
                 {} again with exactly the same arguments plus \"{CONFIRMATION_ARGUMENT}\": \"{token}\". The token works \
                 once, for this caller, these arguments and this plan only, until {}.",
                request.plan.describe(),
                request.tool,
                rfc3339(expires)
            ),
            decision: ApprovalDecision::ConfirmationIssued,
            approval_id: None,
        }
    }

    /// Lets a call through on a page approval: same tool, caller, arguments and plan, approved,
    /// in time, and not used before (the ETag makes the first redemption the only one).
    async fn redeem_page(
        &self,
        request: &ApprovalRequest<'_>,
        id: &str,
        plan_digest: &str,
    ) -> Gate {
        let refused = |message: String| Gate::Stop {
            message,
            decision: ApprovalDecision::Refused,
            approval_id: Some(id.to_string()),
        };
        let (mut record, etag) = match self.store.get(id.trim()).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return refused(format!(
                    "there is no approval {id}: approval_id must be the id an APPROVAL REQUIRED answer gave. Call the tool \
                     without it to ask for approval. Nothing was done."
                ));
            }
            Err(error) => {
                return refused(format!(
                    "the approval could not be read ({error}); nothing was done"
                ));
            }
        };
        if record.tool != request.tool
            || record.requester.subject != request.caller.subject
            || record.arguments_digest != arguments_digest(request.arguments)
        {
            return refused(format!(
                "approval {id} was asked for {} by another caller or with other arguments; it covers only the call it \
                 was asked for. Call the tool without approval_id to ask for this one. Nothing was done.",
                record.tool
            ));
        }
        let now = OffsetDateTime::now_utc();
        match record.state {
            ApprovalState::Pending if now >= record.expires => {
                return refused(format!(
                    "approval {id} expired at {} without a decision; call the tool again without approval_id to ask \
                     again. Nothing was done.",
                    rfc3339(record.expires)
                ));
            }
            ApprovalState::Pending => {
                let url = self.page_url(id).unwrap_or_default();
                return Gate::Stop {
                    message: format!(
                        "approval {id} is still waiting for a person's decision at {url} (until {}). Nothing was done; \
                         call again with the same approval_id once they decided.",
                        rfc3339(record.expires)
                    ),
                    decision: ApprovalDecision::PageRequested,
                    approval_id: Some(id.to_string()),
                };
            }
            ApprovalState::Denied => {
                let by = record.decided_by.as_ref().map_or("a person", Person::label);
                return Gate::Stop {
                    message: format!(
                        "{by} denied {} (approval {id}); nothing was done",
                        request.tool
                    ),
                    decision: ApprovalDecision::Declined,
                    approval_id: Some(id.to_string()),
                };
            }
            ApprovalState::Used => {
                return refused(format!(
                    "approval {id} was already used: each approval allows one call. Call the tool without approval_id \
                     to be asked again. Nothing was done."
                ));
            }
            ApprovalState::Approved => {}
        }
        if record.usable_until().is_some_and(|until| now >= until) {
            return refused(format!(
                "approval {id} was given but not used in time; call the tool again without approval_id to ask again. \
                 Nothing was done."
            ));
        }
        if record.plan_digest != plan_digest {
            return Gate::Stop {
                message: format!(
                    "the plan changed since approval {id} was given, so it does not cover this call; nothing was done. \
                     Approved:\n{}\n\nNow:\n{}\n\nCall the tool again without approval_id to ask for the new plan.",
                    record.plan.describe(),
                    request.plan.describe()
                ),
                decision: ApprovalDecision::Refused,
                approval_id: Some(id.to_string()),
            };
        }
        record.state = ApprovalState::Used;
        record.used_at = Some(now);
        match self.store.replace(&record, &etag).await {
            Ok(()) => Gate::Proceed(Approved {
                decision: ApprovalDecision::ApprovedOnPage,
                approval_id: Some(id.to_string()),
                approver: record.decided_by.as_ref().map(|p| p.label().to_string()),
            }),
            Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => refused(format!(
                "approval {id} was used by another call at the same moment; each approval allows one call. Nothing \
                 was done by this one."
            )),
            Err(error) => refused(format!(
                "approval {id} could not be marked used ({error}), so it is not honoured; nothing was done"
            )),
        }
    }

    /// Marks a sealed approval used; only the first redemption proceeds.
    async fn redeem_marker(
        &self,
        request: &ApprovalRequest<'_>,
        nonce: &str,
        decision: ApprovalDecision,
    ) -> Gate {
        let marker = UsedMarker {
            tool: request.tool,
            caller: &request.caller.subject,
            used_at: OffsetDateTime::now_utc(),
        };
        let created = match self.store.blobs().await {
            Ok(blobs) => blobs
                .create(&format!("used/{nonce}.json"), &marker)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        match created {
            Ok(()) => Gate::Proceed(Approved {
                decision,
                approval_id: None,
                approver: None,
            }),
            Err(StorageError::AlreadyExists { .. }) => stop(
                "this approval was already used: each approval allows one call. Call the tool again without it to be asked again. Nothing was done.".into(),
            ),
            Err(error) => stop(format!("the approval could not be recorded as used ({error}), so it is not honoured; nothing was done")),
        }
    }
}

fn stop(message: String) -> Gate {
    Gate::Stop {
        message,
        decision: ApprovalDecision::Refused,
        approval_id: None,
    }
}

fn declined(request: &ApprovalRequest<'_>, approval_id: Option<String>) -> Gate {
    Gate::Stop {
        message: format!(
            "the person did not approve {}; nothing was done",
            request.tool
        ),
        decision: ApprovalDecision::Declined,
        approval_id,
    }
}

fn plan_changed(request: &ApprovalRequest<'_>) -> Gate {
    stop(format!(
        "the plan changed since the approval was given (the targets or what happens to them are not the same), so it \
         does not cover this call; nothing was done. Now:\n{}\n\nCall the tool again without the approval to ask for \
         this plan.",
        request.plan.describe()
    ))
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// SHA-256 of the arguments; serde_json keeps object keys sorted, so equal arguments in any key
/// order give equal digests.
fn arguments_digest(arguments: &JsonObject) -> String {
    let bytes = serde_json::to_vec(arguments).unwrap_or_default();
    format!("{:x}", Sha256::digest(bytes))
}

/// What a sealed approval is bound to: the tool, the caller and a digest of the exact arguments.
fn binding(request: &ApprovalRequest<'_>) -> Vec<u8> {
    let tenant = request
        .caller
        .tenant
        .as_ref()
        .map(|t| t.as_str())
        .unwrap_or("");
    format!(
        "{}\n{}\n{}\n{}",
        request.tool,
        request.caller.subject,
        tenant,
        arguments_digest(request.arguments)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bound(arguments: serde_json::Value, subject: &str) -> Vec<u8> {
        let caller = Caller {
            subject: subject.into(),
            name: None,
            tenant: None,
            roles: vec![],
            tier: None,
        };
        let arguments = arguments.as_object().cloned().unwrap_or_default();
        let plan = Plan::action("t");
        binding(&ApprovalRequest {
            tool: "t",
            title: "T",
            tier: Tier::Responder,
            caller: &caller,
            arguments: &arguments,
            shown_arguments: serde_json::Value::Null,
            plan: &plan,
            answer: Answer::default(),
            client: ClientAsks::default(),
        })
    }

    #[test]
    fn the_binding_ignores_key_order_and_sees_every_value_and_the_caller() {
        let a = bound(
            json!({"tenant_id": "x", "machine_ids": ["1", "2"]}),
            "alice",
        );
        let reordered: serde_json::Value =
            serde_json::from_str(r#"{"machine_ids": ["1", "2"], "tenant_id": "x"}"#).expect("json");
        assert_eq!(
            a,
            bound(reordered, "alice"),
            "a client may resend the same arguments in another key order"
        );
        assert_ne!(
            a,
            bound(
                json!({"tenant_id": "x", "machine_ids": ["2", "1"]}),
                "alice"
            )
        );
        assert_ne!(
            a,
            bound(json!({"tenant_id": "x", "machine_ids": ["1", "2"]}), "bob")
        );
    }
}
