//! Ids Microsoft numbers (indicators, incidents, detection rules). They end up in URL paths, so
//! they are checked to be digits when they are read from a tool's arguments.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a numeric id names, for its error message.
pub trait NumericIdKind {
    /// e.g. "an indicator id".
    const WHAT: &'static str;
    /// The tool whose output shows it, e.g. "mde_list_indicators".
    const SHOWN_BY: &'static str;
}

#[derive(JsonSchema)]
#[schemars(with = "String", bound = "")]
pub struct NumericId<K> {
    value: String,
    kind: PhantomData<K>,
}

#[derive(Debug, thiserror::Error)]
#[error("'{text}' is not {what}: expected the number {shown_by} shows as id")]
pub struct InvalidNumericId {
    text: String,
    what: &'static str,
    shown_by: &'static str,
}

impl<K: NumericIdKind> NumericId<K> {
    pub fn parse(text: &str) -> Result<Self, InvalidNumericId> {
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed.len() <= 20 && trimmed.bytes().all(|b| b.is_ascii_digit())
        {
            Ok(Self {
                value: trimmed.to_string(),
                kind: PhantomData,
            })
        } else {
            Err(InvalidNumericId {
                text: trimmed.chars().take(64).collect(),
                what: K::WHAT,
                shown_by: K::SHOWN_BY,
            })
        }
    }
}

impl<K> NumericId<K> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<K> Clone for NumericId<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for NumericId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K> Eq for NumericId<K> {}

impl<K> fmt::Debug for NumericId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K> fmt::Display for NumericId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K> Serialize for NumericId<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de, K: NumericIdKind> Deserialize<'de> for NumericId<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing;
    impl NumericIdKind for Thing {
        const WHAT: &'static str = "a thing id";
        const SHOWN_BY: &'static str = "things_list";
    }

    #[test]
    fn numeric_ids_are_digits_and_say_where_they_come_from() {
        assert_eq!(
            NumericId::<Thing>::parse(" 4005 ")
                .expect("digits")
                .as_str(),
            "4005"
        );
        let error = NumericId::<Thing>::parse("../4005")
            .expect_err("not digits")
            .to_string();
        assert!(
            error.contains("a thing id") && error.contains("things_list"),
            "{error}"
        );
        assert!(serde_json::from_str::<NumericId<Thing>>("\"x\"").is_err());
    }
}
