//! Human approval for destructive tools, on a stateless, scaled-out app.
//!
//! Where the client can ask its user (MCP elicitation), the first call answers with an MRTR
//! `input_required` result (SEP-2322): an elicitation the client shows the person, and a sealed
//! `requestState`. The client retries the same `tools/call` with the person's answer and the
//! state, and whichever instance receives the retry can check it, because the state is sealed
//! with a key every instance shares (HMAC, `APPROVAL_SIGNING_KEY`), bound to the tool, the exact
//! arguments, the caller and an expiry. Nothing is kept in memory between the two requests.
//!
//! Where the client cannot ask, `APPROVAL_FALLBACK` decides: refuse, or a two-step confirmation
//! (a preview of the blast radius plus a token bound the same way, passed back as the
//! `confirmation_token` argument). Either approval is single use: its nonce is recorded in blob
//! storage with create-if-absent, so a replay finds the marker and is refused.

use std::time::Duration;

use rand::Rng as _;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequiredResult, InputResponses, RequestStateCodec, RequestStateError,
    SealOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::auth::Caller;
use crate::config::{ApprovalConfig, ApprovalFallback};
use crate::storage::{JsonBlobStore, Storage, StorageError};

/// The argument a destructive tool takes back in the two-step confirmation.
pub const CONFIRMATION_ARGUMENT: &str = "confirmation_token";
/// The key of the elicitation in `inputRequests` / `inputResponses`.
const INPUT_KEY: &str = "approval";
/// The boolean the person sets in the elicitation form.
const APPROVE_FIELD: &str = "approve";
const CONTAINER: &str = "approvals";

/// How a destructive call was approved or why it was not, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// The person approved in the client's elicitation prompt.
    ApprovedByElicitation,
    /// The call carried a valid confirmation token from a previous preview.
    ApprovedByConfirmation,
    /// The person was asked (elicitation sent); nothing was done yet.
    Requested,
    /// A preview and confirmation token were returned; nothing was done yet.
    ConfirmationIssued,
    /// The person declined or cancelled.
    Declined,
    /// No approval was possible (client cannot elicit and the policy refuses) or it was invalid,
    /// expired or already used.
    Refused,
}

/// What to do with a destructive call.
pub enum Gate {
    /// Approved: run the tool.
    Proceed(ApprovalDecision),
    /// Ask the person first (MRTR).
    Ask(InputRequiredResult),
    /// Do not run; tell the model why (or what to show the person).
    Stop {
        message: String,
        decision: ApprovalDecision,
    },
}

/// What a call brings that bears on approval.
pub struct ApprovalRequest<'a> {
    pub tool: &'a str,
    pub title: &'a str,
    pub caller: &'a Caller,
    /// The tool's arguments without the confirmation token.
    pub arguments: &'a serde_json::Map<String, serde_json::Value>,
    pub confirmation_token: Option<&'a str>,
    pub request_state: Option<&'a str>,
    pub input_responses: Option<&'a InputResponses>,
    pub client_can_elicit: bool,
    /// What the person is shown: tenant, targets, arguments.
    pub preview: &'a str,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    Elicitation,
    Confirmation,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    purpose: Purpose,
}

#[derive(Serialize)]
struct UsedMarker<'a> {
    tool: &'a str,
    caller: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    used_at: time::OffsetDateTime,
}

pub struct Approvals {
    codec: RequestStateCodec,
    fallback: ApprovalFallback,
    ttl: Duration,
    used: JsonBlobStore,
    container_ready: OnceCell<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("APPROVAL_SIGNING_KEY cannot be used: {0}")]
pub struct ApprovalKeyError(RequestStateError);

impl Approvals {
    pub fn new(config: &ApprovalConfig, storage: &Storage) -> Result<Self, ApprovalKeyError> {
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
            codec: RequestStateCodec::try_new(key).map_err(ApprovalKeyError)?,
            fallback: config.fallback,
            ttl: config.ttl,
            used: JsonBlobStore::new(storage, CONTAINER),
            container_ready: OnceCell::new(),
        })
    }

    pub async fn check(&self, request: ApprovalRequest<'_>) -> Gate {
        let binding = binding(&request);
        if let Some(state) = request.request_state {
            return self.answered(&request, state, &binding).await;
        }
        if let Some(token) = request.confirmation_token {
            return match self.open(token, &binding, "confirmation token") {
                Ok(Sealed { nonce, purpose: Purpose::Confirmation }) => {
                    self.redeem(&request, &nonce, ApprovalDecision::ApprovedByConfirmation).await
                }
                Ok(_) => stop("this confirmation_token is not one this server issued for confirmation; call without it to get one".into()),
                Err(message) => stop(message),
            };
        }
        if request.client_can_elicit {
            return self.ask(&request, &binding);
        }
        match self.fallback {
            ApprovalFallback::Refuse => stop(format!(
                "{} is destructive and needs a person's approval, but this client cannot show an approval prompt (MCP \
                 elicitation) and this server's policy (APPROVAL_FALLBACK=refuse) does not accept any other approval. \
                 Nothing was done. Use a client that supports elicitation, or ask an administrator.",
                request.tool
            )),
            ApprovalFallback::Confirm => self.confirmation(&request, &binding),
        }
    }

    fn seal(&self, purpose: Purpose, binding: &[u8]) -> (String, time::OffsetDateTime) {
        let sealed = Sealed {
            nonce: uuid::Uuid::new_v4().to_string(),
            purpose,
        };
        let options = SealOptions::new().associated_data(binding).ttl(self.ttl);
        // Serializing two plain strings cannot fail; an empty token would simply not open.
        let token = self
            .codec
            .seal_json_with(&sealed, &options)
            .unwrap_or_default();
        let expires = time::OffsetDateTime::now_utc() + self.ttl;
        (token, expires)
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

    fn ask(&self, request: &ApprovalRequest<'_>, binding: &[u8]) -> Gate {
        let (state, _) = self.seal(Purpose::Elicitation, binding);
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
            request.title, request.tool, request.preview
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
        Gate::Ask(InputRequiredResult::new(Some(inputs), Some(state)))
    }

    async fn answered(&self, request: &ApprovalRequest<'_>, state: &str, binding: &[u8]) -> Gate {
        let nonce = match self.open(state, binding, "approval") {
            Ok(Sealed {
                nonce,
                purpose: Purpose::Elicitation,
            }) => nonce,
            Ok(_) => return stop(
                "the request state is not an approval prompt this server sent; nothing was done"
                    .into(),
            ),
            Err(message) => return stop(message),
        };
        let Some(answer) = request
            .input_responses
            .and_then(|responses| responses.get(INPUT_KEY))
        else {
            return stop("the retried call carries no answer to the approval prompt (inputResponses.approval); nothing was done".into());
        };
        let answer: ElicitResult = match serde_json::from_value(answer.clone()) {
            Ok(answer) => answer,
            Err(error) => {
                return stop(format!(
                    "the answer to the approval prompt is not an elicitation result ({error}); nothing was done"
                ));
            }
        };
        let approved = answer.action == ElicitationAction::Accept
            && answer
                .content
                .as_ref()
                .and_then(|content| content.get(APPROVE_FIELD))
                .and_then(|v| v.as_bool())
                == Some(true);
        if !approved {
            return Gate::Stop {
                message: format!(
                    "the person did not approve {}; nothing was done",
                    request.tool
                ),
                decision: ApprovalDecision::Declined,
            };
        }
        self.redeem(request, &nonce, ApprovalDecision::ApprovedByElicitation)
            .await
    }

    fn confirmation(&self, request: &ApprovalRequest<'_>, binding: &[u8]) -> Gate {
        let (token, expires) = self.seal(Purpose::Confirmation, binding);
        let expires = expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Gate::Stop {
            message: format!(
                "CONFIRMATION REQUIRED - nothing was done yet.\n\n{}\n\nShow this to the person. Only if they confirm, call \
                 {} again with exactly the same arguments plus \"{CONFIRMATION_ARGUMENT}\": \"{token}\". The token works \
                 once, for this caller and these arguments only, until {expires}.",
                request.preview, request.tool
            ),
            decision: ApprovalDecision::ConfirmationIssued,
        }
    }

    /// Marks the approval used; only the first redemption proceeds.
    async fn redeem(
        &self,
        request: &ApprovalRequest<'_>,
        nonce: &str,
        decision: ApprovalDecision,
    ) -> Gate {
        let marker = UsedMarker {
            tool: request.tool,
            caller: &request.caller.subject,
            used_at: time::OffsetDateTime::now_utc(),
        };
        let ready = self
            .container_ready
            .get_or_try_init(|| async { self.used.ensure_container().await.map(|_| ()) })
            .await;
        let created = match ready {
            Ok(()) => self
                .used
                .create(&format!("used/{nonce}.json"), &marker)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        match created {
            Ok(()) => Gate::Proceed(decision),
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
    }
}

/// What an approval is bound to: the tool, the caller and a digest of the exact arguments.
/// serde_json keeps object keys sorted, so equal arguments give equal digests.
fn binding(request: &ApprovalRequest<'_>) -> Vec<u8> {
    let arguments = serde_json::to_vec(request.arguments).unwrap_or_default();
    let digest = Sha256::digest(&arguments);
    let tenant = request
        .caller
        .tenant
        .as_ref()
        .map(|t| t.as_str())
        .unwrap_or("");
    format!(
        "{}\n{}\n{}\n{:x}",
        request.tool, request.caller.subject, tenant, digest
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
        binding(&ApprovalRequest {
            tool: "t",
            title: "T",
            caller: &caller,
            arguments: &arguments,
            confirmation_token: None,
            request_state: None,
            input_responses: None,
            client_can_elicit: false,
            preview: "",
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
