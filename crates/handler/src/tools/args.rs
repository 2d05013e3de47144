//! Argument types every tool family shares, so that a time, a window, a page size or a field
//! list is written one way across the catalogue. Each is parsed when the call's arguments are
//! read: a tool receives a value that is already valid, and a bad one is refused before the tool
//! runs, with a message that names the argument, repeats what was given and lists the forms
//! accepted.
//!
//! serde does not tell a type which field it is read into, so each type carries its argument's
//! name as a type parameter ([`Since`], [`Timespan`], [`MaxRows`] ...).

use std::borrow::Cow;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::rows::ListRow;
use crate::mcp::ToolError;

/// Free text a person writes (a comment, a description), line breaks kept: trimmed, 1 to `max`
/// characters.
pub fn text(name: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ToolError::invalid(format!("{name} is empty")));
    }
    let length = value.chars().count();
    if length > max {
        return Err(ToolError::invalid(format!(
            "{name} is {length} characters; at most {max} are accepted"
        )));
    }
    Ok(value.to_owned())
}

/// A name or value that goes into a filter, a path or a title: as [`text`], and on one line.
pub fn one_line(name: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let value = text(name, value, max)?;
    if value.chars().any(char::is_control) {
        return Err(ToolError::invalid(format!(
            "{name} contains control characters (such as line breaks); write it on one line"
        )));
    }
    Ok(value)
}

/// The name of the argument a value is read into, for its refusal message.
pub trait ArgumentName {
    const NAME: &'static str;
}

/// Declares argument names: one uninhabited marker type each.
macro_rules! argument_names {
    ($($(#[$doc:meta])* $marker:ident = $name:literal;)*) => {$(
        $(#[$doc])*
        pub enum $marker {}
        impl ArgumentName for $marker {
            const NAME: &'static str = $name;
        }
    )*};
}

argument_names! {
    /// A list's page size.
    PageSize = "limit";
    /// The most rows a query answers with.
    MaxRows = "max_rows";
    /// The start of a time range (a list's items created then or later).
    Since = "since";
    /// The end of a time range.
    Until = "until";
    /// How far back a query searches.
    Timespan = "timespan";
    /// How far back each run of a scheduled hunt searches.
    Lookback = "lookback";
}

const TIME_FORMS: &str = "an RFC 3339 time (2026-05-01T08:00:00Z) or a duration back from now (30m, 24h, 7d, PT24H, P7D)";
const DURATION_FORMS: &str = "a duration (30m, 24h, 7d, 2w, PT24H, P7D)";

/// A point in time: RFC 3339, or a duration back from the moment the arguments were read.
pub struct When<N> {
    at: OffsetDateTime,
    name: PhantomData<N>,
}

impl<N> When<N> {
    /// In UTC, to the whole second.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }
}

/// `when` as RFC 3339 in UTC.
pub fn rfc3339(when: OffsetDateTime) -> String {
    // RFC 3339 cannot write years past 9999, which no argument or clock here reaches.
    when.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl<'de, N: ArgumentName> Deserialize<'de> for When<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let at = parse_time(&text, OffsetDateTime::now_utc())
            .ok_or_else(|| D::Error::custom(refusal(N::NAME, &text, TIME_FORMS)))?;
        Ok(Self {
            at,
            name: PhantomData,
        })
    }
}

impl<N> JsonSchema for When<N> {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::When").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "description": TIME_FORMS})
    }
}

/// A length of time, such as how far back a query looks.
pub struct Window<N> {
    length: Duration,
    name: PhantomData<N>,
}

impl<N> Window<N> {
    pub fn length(&self) -> Duration {
        self.length
    }

    /// As an ISO 8601 duration (`P7D`, `PT1H30M`), the form Graph's runHuntingQuery `Timespan`
    /// and Log Analytics' `timespan` take.
    pub fn iso8601(&self) -> String {
        iso8601(self.length)
    }
}

impl<N: ArgumentName> Window<N> {
    /// Refuses a window longer than `most` days, which the service would refuse or ignore.
    pub fn at_most_days(self, most: i64) -> Result<Self, crate::mcp::ToolError> {
        if self.length > Duration::days(most) {
            return Err(crate::mcp::ToolError::invalid(format!(
                "{} '{}' is longer than the {most} days allowed",
                N::NAME,
                self.iso8601()
            )));
        }
        Ok(self)
    }
}

impl<'de, N: ArgumentName> Deserialize<'de> for Window<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let length = parse_duration(&text)
            .ok_or_else(|| D::Error::custom(refusal(N::NAME, &text, DURATION_FORMS)))?;
        Ok(Self {
            length,
            name: PhantomData,
        })
    }
}

impl<N> JsonSchema for Window<N> {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Duration").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "description": DURATION_FORMS})
    }
}

fn refusal(name: &str, given: &str, forms: &str) -> String {
    format!("{name} '{given}' is not understood; give {forms}")
}

fn parse_time(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let text = text.trim();
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => now.checked_sub(parse_duration(text)?)?,
    };
    at.to_offset(UtcOffset::UTC).replace_nanosecond(0).ok()
}

/// `30m`, `24h`, `7d`, `2w`, `90s`, or ISO 8601 `P[nW][nD][T[nH][nM][nS]]`; whole numbers,
/// longer than zero.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let length = match text.strip_prefix(['P', 'p']) {
        Some(rest) => iso_duration(rest)?,
        None => {
            let unit = text.chars().last()?;
            let count: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
            Duration::seconds(count.checked_mul(unit_seconds(unit.to_ascii_lowercase())?)?)
        }
    };
    (length > Duration::ZERO).then_some(length)
}

fn unit_seconds(unit: char) -> Option<i64> {
    match unit {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        'w' => Some(604_800),
        _ => None,
    }
}

/// The part of an ISO 8601 duration after `P`: date units before `T`, time units after it,
/// each at most once and in order (months and years are refused: their length varies).
fn iso_duration(rest: &str) -> Option<Duration> {
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds = 0i64;
    let mut parts = 0;
    let mut take = |text: &str, units: &[char]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = c.to_ascii_lowercase();
            let position = units[next_unit..].iter().position(|u| *u == unit)? + next_unit;
            let count: i64 = number.parse().ok()?;
            seconds = seconds.checked_add(count.checked_mul(unit_seconds(unit)?)?)?;
            number.clear();
            next_unit = position + 1;
            parts += 1;
        }
        number.is_empty().then_some(())
    };
    take(date, &['w', 'd'])?;
    if let Some(time) = time {
        take(time, &['h', 'm', 's'])?;
    }
    (parts > 0).then(|| Duration::seconds(seconds))
}

/// `length` as ISO 8601: whole days as `P7D`, otherwise `P1DT2H30M` and the like.
fn iso8601(length: Duration) -> String {
    let total = length.whole_seconds();
    let (days, rest) = (total / 86_400, total % 86_400);
    let mut text = String::from("P");
    if days > 0 {
        text.push_str(&format!("{days}D"));
    }
    if rest > 0 {
        text.push('T');
        for (unit, count) in [
            ('H', rest / 3600),
            ('M', rest % 3600 / 60),
            ('S', rest % 60),
        ] {
            if count > 0 {
                text.push_str(&format!("{count}{unit}"));
            }
        }
    }
    text
}

/// How many items a call returns at most: a list's page size (`limit`) unless `N` names another
/// argument (a query's `max_rows`). `DEFAULT` when absent, refused outside `1..=MAX`. The input
/// schema states both, so the argument's own doc comment only says what is counted.
pub struct Limit<const DEFAULT: u32, const MAX: u32, N = PageSize> {
    count: u32,
    name: PhantomData<N>,
}

impl<const DEFAULT: u32, const MAX: u32, N> Limit<DEFAULT, MAX, N> {
    pub fn get(&self) -> usize {
        self.count as usize
    }
}

impl<const DEFAULT: u32, const MAX: u32, N> Default for Limit<DEFAULT, MAX, N> {
    fn default() -> Self {
        Self {
            count: DEFAULT,
            name: PhantomData,
        }
    }
}

impl<'de, const DEFAULT: u32, const MAX: u32, N: ArgumentName> Deserialize<'de>
    for Limit<DEFAULT, MAX, N>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read wide, so that 0, -1 and 10^12 all get the same message.
        let requested = i64::deserialize(deserializer)?;
        match u32::try_from(requested) {
            Ok(count) if (1..=MAX).contains(&count) => Ok(Self {
                count,
                name: PhantomData,
            }),
            _ => Err(D::Error::custom(format!(
                "{} must be between 1 and {MAX} (default {DEFAULT}), got {requested}",
                N::NAME
            ))),
        }
    }
}

impl<const DEFAULT: u32, const MAX: u32, N> JsonSchema for Limit<DEFAULT, MAX, N> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Limit".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1, "maximum": MAX, "default": DEFAULT})
    }
}

/// Fields a list row should carry beyond its compact ones: names of `T`'s fields, or `all`.
pub struct Fields<T> {
    extra: Extra,
    row: PhantomData<T>,
}

enum Extra {
    All,
    Named(Vec<String>),
}

impl<T> Fields<T> {
    /// Whether a row carries `field` (named, or `all`).
    pub fn includes(&self, field: &str) -> bool {
        matches!(self.extra, Extra::All) || self.names(field)
    }

    /// Whether `field` was asked for by name, which is how free text is asked for whole.
    pub fn names(&self, field: &str) -> bool {
        match &self.extra {
            Extra::All => false,
            Extra::Named(names) => names.iter().any(|name| name == field),
        }
    }
}

impl<'de, T: ListRow> Deserialize<'de> for Fields<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        let extra = if names.iter().any(|name| name == "all") {
            Extra::All
        } else {
            let known = T::field_names();
            let unknown: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|name| !known.iter().any(|field| field == name))
                .collect();
            if !unknown.is_empty() {
                return Err(D::Error::custom(format!(
                    "fields {unknown:?} are not fields of this list; known fields: {}, or all",
                    known.join(", ")
                )));
            }
            Extra::Named(names)
        };
        Ok(Self {
            extra,
            row: PhantomData,
        })
    }
}

impl<T> JsonSchema for Fields<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Fields".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "array", "items": {"type": "string"}})
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-05-10T12:00:00Z", &Rfc3339).expect("time")
    }

    fn instant(text: &str) -> Option<String> {
        parse_time(text, now()).map(rfc3339)
    }

    #[test]
    fn an_instant_is_rfc_3339_or_a_duration_back_from_now() {
        assert_eq!(
            instant("2026-05-01T08:00:00.123+02:00").as_deref(),
            Some("2026-05-01T06:00:00Z")
        );
        for (ago, expected) in [
            ("30m", "2026-05-10T11:30:00Z"),
            ("24h", "2026-05-09T12:00:00Z"),
            ("7d", "2026-05-03T12:00:00Z"),
            ("1w", "2026-05-03T12:00:00Z"),
            ("90s", "2026-05-10T11:58:30Z"),
            ("PT24H", "2026-05-09T12:00:00Z"),
            ("P7D", "2026-05-03T12:00:00Z"),
            ("P1DT2H30M", "2026-05-09T09:30:00Z"),
            (" 2h ", "2026-05-10T10:00:00Z"),
        ] {
            assert_eq!(instant(ago).as_deref(), Some(expected), "{ago}");
        }
        for bad in [
            "",
            "yesterday",
            "24",
            "h",
            "-5m",
            "1.5h",
            "0h",
            "PT0S",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "P1M",
            "P1.5D",
            "PT1S1H",
            "7 d",
            "2026-05-01",
        ] {
            assert_eq!(instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_time_is_refused_naming_the_argument_the_value_and_the_forms() {
        let error = serde_json::from_value::<When<Since>>(json!("last tuesday"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.starts_with("since 'last tuesday' is not understood"),
            "{error}"
        );
        assert!(
            error.contains("RFC 3339") && error.contains("24h") && error.contains("PT24H"),
            "{error}"
        );
        let error = serde_json::from_value::<Window<Timespan>>(json!("2026-05-01T08:00:00Z"))
            .err()
            .expect("an instant is not a window")
            .to_string();
        assert!(
            error.starts_with("timespan '2026-05-01T08:00:00Z'"),
            "{error}"
        );
    }

    #[test]
    fn a_window_is_written_back_as_iso_8601() {
        let window = |text: &str| {
            serde_json::from_value::<Window<Timespan>>(json!(text))
                .expect("window")
                .iso8601()
        };
        assert_eq!(window("24h"), "P1D");
        assert_eq!(window("PT24H"), "P1D");
        assert_eq!(window("7d"), "P7D");
        assert_eq!(window("2w"), "P14D");
        assert_eq!(window("90m"), "PT1H30M");
        assert_eq!(window("P1DT2H30M5S"), "P1DT2H30M5S");
        assert_eq!(window("45s"), "PT45S");
        let long = serde_json::from_value::<Window<Timespan>>(json!("31d")).expect("window");
        let error = long.at_most_days(30).err().expect("too long").to_string();
        assert!(
            error.contains("timespan 'P31D' is longer than the 30 days"),
            "{error}"
        );
    }

    #[test]
    fn a_limit_is_within_its_range_and_defaults_when_absent() {
        #[derive(Deserialize)]
        struct Params {
            #[serde(default)]
            limit: Limit<20, 500>,
            #[serde(default)]
            max_rows: Limit<10, 1000, MaxRows>,
        }
        let read = |arguments| {
            serde_json::from_value::<Params>(arguments)
                .map(|p| (p.limit.get(), p.max_rows.get()))
                .map_err(|error| error.to_string())
        };
        assert_eq!(read(json!({})), Ok((20, 10)));
        assert_eq!(read(json!({"limit": 500, "max_rows": 1})), Ok((500, 1)));
        for bad in [0, -1, 501, 1_i64 << 40] {
            let error = read(json!({ "limit": bad })).expect_err("refused");
            assert!(
                error.contains(&format!(
                    "limit must be between 1 and 500 (default 20), got {bad}"
                )),
                "{error}"
            );
        }
        let error = read(json!({"max_rows": 1001})).expect_err("refused");
        assert!(
            error.contains("max_rows must be between 1 and 1000 (default 10), got 1001"),
            "{error}"
        );
    }

    #[test]
    fn free_text_is_trimmed_bounded_and_one_line_where_asked() {
        assert_eq!(
            text("comment", "  INC-7\nsweep ", 20).unwrap(),
            "INC-7\nsweep"
        );
        let message = text("comment", "   ", 20).unwrap_err().to_string();
        assert!(message.contains("comment is empty"), "{message}");
        let message = text("title", "abcdef", 5).unwrap_err().to_string();
        assert!(
            message.contains("title is 6 characters; at most 5 are accepted"),
            "{message}"
        );
        let message = one_line("label", "a\nb", 20).unwrap_err().to_string();
        assert!(
            message.contains("label contains control characters") && message.contains("one line"),
            "{message}"
        );
        assert_eq!(one_line("label", " triaged ", 20).unwrap(), "triaged");
    }
}
