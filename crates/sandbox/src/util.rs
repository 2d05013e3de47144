//! Small helpers shared by every API module: Microsoft-style timestamps, GUIDs, query-string
//! handling and server-side paging.

use rand::Rng;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Formats a timestamp the way Microsoft's APIs do: UTC, seven fractional digits, `Z`
/// (e.g. `2024-05-01T10:00:00.1234567Z`).
pub fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// Parses the timestamp spellings clients actually send: RFC 3339 with `Z` or an offset, any
/// number of fractional digits, a date-time without zone (taken as UTC), or a bare date.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        // `9999-12-31T23:59:59-01:00` is a year past the last one `OffsetDateTime` holds in
        // UTC: invalid, not a panic.
        return t.checked_to_offset(UtcOffset::UTC);
    }
    // RFC 3339 requires a zone; Microsoft APIs treat a zone-less value as UTC.
    let with_z = format!("{s}Z");
    if let Ok(t) = OffsetDateTime::parse(&with_z, &Rfc3339) {
        return Some(t);
    }
    // `2024-05-01 10:00:00` (KQL allows a space separator).
    if s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') {
        let mut fixed = s.to_string();
        fixed.replace_range(10..11, "T");
        return parse_time(&fixed);
    }
    // Bare date.
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_fmt) {
        return Some(PrimitiveDateTime::new(d, time::Time::MIDNIGHT).assume_utc());
    }
    None
}

/// A random version-4 GUID from the given RNG (seeded data) in lowercase hyphenated form.
pub fn guid_from(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A fresh, non-deterministic GUID (request ids, objects created at run time).
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Lowercase hex string of `n` random bytes.
pub fn hex_from(rng: &mut impl Rng, n_bytes: usize) -> String {
    let mut s = String::with_capacity(n_bytes * 2);
    for _ in 0..n_bytes {
        let b: u8 = rng.random();
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parsed query string. OData system options are matched case-insensitively because the
/// Microsoft services do (`$Filter` works as well as `$filter`).
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Returns the pairs with `overrides` replacing (or adding) the named parameters.
    pub fn with_overrides(&self, overrides: &[(&str, String)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| k.eq_ignore_ascii_case(o)))
            .cloned()
            .collect();
        for (k, v) in overrides {
            out.push(((*k).to_string(), v.clone()));
        }
        out
    }
}

/// Percent-encodes a query component the way Microsoft's nextLinks look (`%20` for spaces,
/// OData punctuation such as `$`, `'`, `(`, `)`, `,` and `:` left readable).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b','
            | b':'
            | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds an absolute URL from the sandbox base URL, a path and query pairs.
pub fn build_url(base: &str, path: &str, pairs: &[(String, String)]) -> String {
    let mut url = format!("{base}{path}");
    for (i, (k, v)) in pairs.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode_component(k));
        url.push('=');
        url.push_str(&encode_component(v));
    }
    url
}

/// One page of a server-paged list.
pub struct Page<T> {
    pub items: Vec<T>,
    /// `$skip` (or skip token) and remaining `$top` for the next page, when more remain.
    pub next: Option<(usize, Option<usize>)>,
}

/// Server-side paging as the Microsoft list APIs do it: the client's `$skip`/`$top` select a
/// window, and the server returns at most `page_size` of it plus a link to the rest.
pub fn paginate<T>(items: Vec<T>, skip: usize, top: Option<usize>, page_size: usize) -> Page<T> {
    let page_size = page_size.max(1);
    let total = items.len();
    let window_end = match top {
        Some(t) => skip.saturating_add(t).min(total),
        None => total,
    };
    let start = skip.min(total);
    let page_end = start.saturating_add(page_size).min(window_end);
    let next = if page_end < window_end {
        Some((page_end, top.map(|t| t - (page_end - start))))
    } else {
        None
    };
    let items = items
        .into_iter()
        .skip(start)
        .take(page_end - start)
        .collect();
    Page { items, next }
}

/// Parses a non-negative integer query option, naming the option in the error.
pub fn parse_usize_opt(q: &QueryParams, name: &str) -> Result<Option<usize>, String> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
            format!(
                "Invalid value '{v}' for query option '{name}': expected a non-negative integer"
            )
        }),
    }
}

/// Parses an ISO 8601 duration such as `P1D`, `PT24H`, `P7DT12H`, `PT30M`, `P1W`.
pub fn parse_iso_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let mut total = Duration::ZERO;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' | '.' => num.push(c),
            _ => {
                let n: f64 = num.parse().ok()?;
                num.clear();
                let secs = match (c.to_ascii_uppercase(), in_time) {
                    ('W', false) => n * 7.0 * 86400.0,
                    ('D', false) => n * 86400.0,
                    ('H', true) => n * 3600.0,
                    ('M', true) => n * 60.0,
                    ('S', true) => n,
                    _ => return None,
                };
                // A duration longer than `Duration` holds (`P99999999999999999999D`) is
                // refused as invalid rather than overflowing.
                total = total.checked_add(Duration::checked_seconds_f64(secs)?)?;
                any = true;
            }
        }
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

/// Resolves a Log Analytics / Graph `timespan` (`PT24H`, `start/end`, `start/duration`,
/// `duration/end`) to a `[start, end]` window relative to `now`.
pub fn parse_timespan_window(
    s: &str,
    now: OffsetDateTime,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    if let Some((a, b)) = s.split_once('/') {
        let a_t = parse_time(a);
        let b_t = parse_time(b);
        return match (a_t, b_t) {
            (Some(a), Some(b)) => Some((a, b)),
            // A window reaching past the representable years is as invalid as a bad duration.
            (Some(a), None) => parse_iso_duration(b)
                .and_then(|d| a.checked_add(d))
                .map(|end| (a, end)),
            (None, Some(b)) => parse_iso_duration(a)
                .and_then(|d| b.checked_sub(d))
                .map(|start| (start, b)),
            (None, None) => None,
        };
    }
    parse_iso_duration(s)
        .and_then(|d| now.checked_sub(d))
        .map(|start| (start, now))
}

/// A minimal CRC-32 (IEEE) so the sandbox can serve well-formed zip and gzip downloads
/// without another dependency.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A zip archive with one stored (uncompressed) entry.
pub fn zip_single(name: &str, content: &[u8]) -> Vec<u8> {
    let crc = crc32(content);
    let size = u32::try_from(content.len()).unwrap_or(u32::MAX);
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut out = Vec::new();
    // Local file header.
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version needed
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    out.extend_from_slice(&0u16.to_le_bytes()); // time
    out.extend_from_slice(&0x21u16.to_le_bytes()); // date (1980-01-01)
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(content);
    let cd_offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
    // Central directory header.
    let mut cd = Vec::new();
    cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    cd.extend_from_slice(&20u16.to_le_bytes()); // version made by
    cd.extend_from_slice(&20u16.to_le_bytes()); // version needed
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0x21u16.to_le_bytes());
    cd.extend_from_slice(&crc.to_le_bytes());
    cd.extend_from_slice(&size.to_le_bytes());
    cd.extend_from_slice(&size.to_le_bytes());
    cd.extend_from_slice(&name_len.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes()); // extra
    cd.extend_from_slice(&0u16.to_le_bytes()); // comment
    cd.extend_from_slice(&0u16.to_le_bytes()); // disk
    cd.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
    cd.extend_from_slice(&0u32.to_le_bytes()); // external attrs
    cd.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    cd.extend_from_slice(name.as_bytes());
    let cd_len = u32::try_from(cd.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&cd);
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A gzip member holding `content` in stored (uncompressed) deflate blocks: what a Live
/// Response GetFile download is (`.gz`), without a compression dependency.
pub fn gzip_stored(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = content.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(content).to_le_bytes());
    out.extend_from_slice(&(u32::try_from(content.len() % (1 << 32)).unwrap_or(0)).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_past_the_last_year_in_utc_are_invalid() {
        // Found by `time_parsers_never_panic`: converting this to UTC panicked.
        assert_eq!(parse_time("9999-12-31T23:59:59-23:59"), None);
        assert!(parse_time("9999-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn time_round_trip() {
        let t = parse_time("2024-05-01T10:00:00.5Z").unwrap();
        assert_eq!(fmt_time(t), "2024-05-01T10:00:00.5000000Z");
        assert!(parse_time("2024-05-01").is_some());
        assert!(parse_time("2024-05-01T10:00:00").is_some());
        assert!(parse_time("2024-05-01T10:00:00+02:00").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn paging_windows() {
        let p = paginate((0..60).collect::<Vec<_>>(), 0, None, 25);
        assert_eq!(p.items.len(), 25);
        assert_eq!(p.next, Some((25, None)));
        let p = paginate((0..60).collect::<Vec<_>>(), 50, None, 25);
        assert_eq!(p.items, (50..60).collect::<Vec<_>>());
        assert!(p.next.is_none());
        let p = paginate((0..60).collect::<Vec<_>>(), 0, Some(30), 25);
        assert_eq!(p.next, Some((25, Some(5))));
    }

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(parse_iso_duration("PT24H"), Some(Duration::hours(24)));
        assert_eq!(parse_iso_duration("P1DT30M"), Some(Duration::minutes(1470)));
        assert_eq!(parse_iso_duration("1D"), None);
        assert_eq!(parse_iso_duration("P"), None);
    }

    #[test]
    fn huge_iso_durations_are_refused_not_a_panic() {
        // Reported: a duration past `Duration`'s range panicked instead of being refused.
        assert_eq!(parse_iso_duration("P99999999999999999999D"), None);
        assert_eq!(parse_iso_duration("PT9223372036854775807S"), None);
        assert_eq!(parse_iso_duration("P1W"), Some(Duration::weeks(1)));
        assert_eq!(parse_iso_duration("P1Y"), None);
        assert_eq!(parse_iso_duration("-PT1H"), None);
        let now = parse_time("2024-05-01T00:00:00Z").unwrap();
        assert_eq!(parse_timespan_window("P99999999999999999999D", now), None);
        // `Duration` holds 8,000,000 days; a date 21,900 years away does not exist.
        assert_eq!(parse_timespan_window("P8000000D", now), None);
        assert_eq!(parse_timespan_window("2024-05-01/P8000000D", now), None);
        assert_eq!(parse_timespan_window("P8000000D/2024-05-01", now), None);
        assert_eq!(
            parse_timespan_window("2024-04-30/P1D", now),
            Some((now - Duration::days(1), now))
        );
    }

    /// Durations near and past every limit: huge, negative, fractional, unsupported units.
    fn iso_duration_like() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "P99999999999999999999D",
                "PT9223372036854775807S",
                "PT9223372036854775808S",
                "P15250284W",
                "P106751991167300D",
                "PT1e400S",
                "P1Y",
                "-PT1H",
                "P.D",
                "PT",
                "P1DT",
                "PT0.0000000001S",
            ])
            .prop_map(str::to_string),
            "-?[Pp][0-9.]{0,25}[WwDdYyMm]?([Tt]([0-9.]{0,25}[HhMmSs]){0,3})?",
            any::<String>(),
        ]
    }

    /// Midnight UTC of `date` in Unix seconds: the bounds of the clock the tests draw from.
    fn unix_seconds(date: time::Date) -> i64 {
        PrimitiveDateTime::new(date, time::Time::MIDNIGHT)
            .assume_utc()
            .unix_timestamp()
    }

    /// Timestamps near the representable years and beyond, in the spellings `parse_time` takes.
    fn time_like() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "9999-12-31T23:59:59.9999999Z",
                "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:59-23:59",
                "0000-01-01T00:00:00+23:59",
                "2024-05-01 10:00:00",
            ])
            .prop_map(str::to_string),
            "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Durations, windows and timestamps come straight from query strings and bodies.
        #[test]
        fn time_parsers_never_panic(
            duration in iso_duration_like(),
            time in time_like(),
            now in (unix_seconds(time::Date::MIN)..=unix_seconds(time::Date::MAX)),
        ) {
            let now = OffsetDateTime::from_unix_timestamp(now).unwrap();
            let _ = parse_iso_duration(&duration);
            let _ = parse_time(&time);
            for window in [
                duration.clone(),
                format!("{time}/{duration}"),
                format!("{duration}/{time}"),
                format!("{time}/{time}"),
            ] {
                if let Some((start, end)) = parse_timespan_window(&window, now) {
                    let _ = fmt_time(start);
                    let _ = fmt_time(end);
                }
            }
        }

        /// `$skip`, `$top` and skip tokens from any query string, paged at any size.
        #[test]
        fn paging_options_never_panic(
            raw in "(\\$?[a-zA-Z]{0,6}=[^&]{0,24}&?){0,4}|\\PC*",
            items in 0usize..200,
            skip in any::<usize>(),
            top in any::<Option<usize>>(),
            page_size in any::<usize>(),
        ) {
            let q = QueryParams::parse(Some(&raw));
            let _ = parse_usize_opt(&q, "$skip");
            let _ = parse_usize_opt(&q, "$top");
            let page = paginate((0..items).collect::<Vec<_>>(), skip, top, page_size);
            prop_assert!(page.items.len() <= items);
        }
    }

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}

/// Serde helper: `OffsetDateTime` as a Microsoft-style timestamp string.
pub mod ms_time {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_time(*t))
    }

    /// The same for optional timestamps (`null` when absent).
    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::fmt_time(*t)),
                None => s.serialize_none(),
            }
        }
    }
}
