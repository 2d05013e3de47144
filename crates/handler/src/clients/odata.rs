//! The OData literals clients put in a `$filter`. Defender's API, Graph and Azure Resource
//! Manager read the same forms, so each is written one way here.

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use super::Open;

/// A string literal: quoted, a quote inside doubled.
pub fn string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A member of one of Microsoft's closed sets, as a string literal in the service's spelling.
pub fn member<T: Serialize>(member: T) -> String {
    string(Open::from_known(member).as_str())
}

/// An instant as a `DateTimeOffset` literal for `ge` bounds: whole seconds in UTC, rounded down
/// so that nothing created within the second is missed.
pub fn time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_double_their_quotes() {
        assert_eq!(string("O'Brien"), "'O''Brien'");
    }

    #[test]
    fn members_are_spelled_as_the_service_spells_them() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        enum Status {
            InProgress,
        }
        assert_eq!(member(Status::InProgress), "'inProgress'");
    }

    #[test]
    fn times_are_whole_utc_seconds_rounded_down() {
        let at = time::macros::datetime!(2026-03-10 11:15:07.9 +02:00);
        assert_eq!(time(at), "2026-03-10T09:15:07Z");
    }
}
