//! Values from Microsoft's closed sets as a client reads them. Microsoft adds members to its
//! enums (a status, a severity, a classification) without a new API version, so a value this
//! server does not list must not fail a whole listing: [`Open`] holds the member when it is
//! one this server knows, and always the value exactly as the service wrote it.
//!
//! What a client *sends* is always one of the members it knows: requests take the closed enum
//! itself, never an `Open`.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A member of the closed set `T` as the service reported it. A string in output schemas: the
/// members this server lists are not all the service may send.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(with = "String", bound = "")]
pub struct Open<T> {
    known: Option<T>,
    wire: String,
}

impl<T> Open<T> {
    /// The member, when it is one this server knows.
    pub fn known(&self) -> Option<&T> {
        self.known.as_ref()
    }

    /// The value exactly as the service wrote it.
    pub fn as_str(&self) -> &str {
        &self.wire
    }
}

impl<T: PartialEq> Open<T> {
    /// Whether the value is `member` (never true for a value this server does not know).
    pub fn is(&self, member: &T) -> bool {
        self.known.as_ref() == Some(member)
    }
}

impl<T: Serialize> Open<T> {
    /// A member this server knows, spelled as the service spells it.
    pub fn from_known(member: T) -> Self {
        let wire = match serde_json::to_value(&member) {
            Ok(serde_json::Value::String(wire)) => wire,
            other => panic!("a closed set's member serializes to a string, not {other:?}"),
        };
        Self {
            known: Some(member),
            wire,
        }
    }
}

/// Two reported values are equal when the service wrote the same member: by the member when it
/// is known (so a difference in case the service allows does not count), else by the text.
impl<T: PartialEq> PartialEq for Open<T> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.known, &other.known) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, None) => self.wire == other.wire,
            _ => false,
        }
    }
}

impl<T: Eq> Eq for Open<T> {}

/// Read as text (what a summary line or a fact shows), the value as the service wrote it.
impl<T> std::ops::Deref for Open<T> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.wire
    }
}

impl<T> fmt::Display for Open<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.wire)
    }
}

impl<T: DeserializeOwned> Open<T> {
    /// A value as the service wrote it (kept as text in a record since).
    pub fn reported(wire: impl Into<String>) -> Self {
        let wire = wire.into();
        let known = T::deserialize(wire.as_str().into_deserializer())
            .map_err(|_: serde::de::value::Error| ())
            .ok();
        Self { known, wire }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Open<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::reported)
    }
}

/// Written back as the service wrote it, so nothing is lost on the way to the model.
impl<T> Serialize for Open<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.wire)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Status {
        New,
        InProgress,
    }

    #[test]
    fn a_known_member_is_read_and_written_back_as_the_service_spelled_it() {
        let status: Open<Status> = serde_json::from_str(r#""inProgress""#).unwrap();
        assert!(status.is(&Status::InProgress));
        assert_eq!(status.known(), Some(&Status::InProgress));
        assert_eq!(status, Open::from_known(Status::InProgress));
        assert_eq!(serde_json::to_string(&status).unwrap(), r#""inProgress""#);
    }

    #[test]
    fn a_member_added_later_is_kept_not_refused() {
        let status: Open<Status> = serde_json::from_str(r#""awaitingAction""#).unwrap();
        assert_eq!(status.known(), None);
        assert!(!status.is(&Status::New));
        assert_eq!(status.as_str(), "awaitingAction");
        assert_eq!(status.to_string(), "awaitingAction");
        assert_ne!(status, Open::from_known(Status::New));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#""awaitingAction""#
        );
        let error = serde_json::from_str::<Open<Status>>("3").unwrap_err();
        assert!(error.to_string().contains("expected a string"), "{error}");
    }
}
