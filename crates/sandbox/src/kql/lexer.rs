//! The lexer: query text to tokens, with the line and column every error names.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Long(i64),
    Real(f64),
    Span(Duration),
    DateTimeLit(String),
    TimeSpanLit(String),
    Pipe,
    Comma,
    LParen,
    RParen,
    Assign,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    TildeEq,
    BangTilde,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    DotDot,
    Semi,
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) text: String,
}

/// Operators spelled with a hyphen (`project-away`): the lexer joins them into one word.
pub(super) const HYPHEN_WORDS: &[&str] = &[
    "project-away",
    "project-rename",
    "project-reorder",
    "project-keep",
    "mv-expand",
    "mv-apply",
    "make-series",
    "parse-where",
    "parse-kv",
    "top-nested",
    "top-hitters",
    "project-smart",
];

pub(super) fn line_pos(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i - 1).unwrap_or(offset);
    (line, col)
}

pub(super) fn syntax_at(
    src: &str,
    offset: usize,
    token: Option<&str>,
    message: String,
) -> QueryError {
    let (line, pos) = line_pos(src, offset);
    QueryError {
        kind: QueryErrorKind::Syntax,
        message,
        line,
        pos,
        token: token.map(str::to_string),
    }
}

pub(super) fn span_unit(unit: &str) -> Option<f64> {
    // Seconds per unit, for the timespan literal suffixes Kusto accepts.
    Some(match unit {
        "d" | "day" | "days" => 86400.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "m" | "min" | "minute" | "minutes" => 60.0,
        "s" | "sec" | "second" | "seconds" => 1.0,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 0.001,
        "microsecond" | "microseconds" => 0.000_001,
        "tick" | "ticks" => 0.000_000_1,
        _ => return None,
    })
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let bytes = src.as_bytes();
    let mut i = 0;
    let mut out: Vec<Token> = Vec::new();
    let is_ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'$';
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        // Whitespace and `//` comments.
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let push = |out: &mut Vec<Token>, tok: Tok, end: usize| {
            out.push(Token {
                tok,
                start,
                text: src[start..end].to_string(),
            });
        };
        // Strings: '..', "..", and verbatim @'..' / @"..".
        if c == b'\''
            || c == b'"'
            || (c == b'@' && matches!(bytes.get(i + 1), Some(b'\'') | Some(b'"')))
        {
            let verbatim = c == b'@';
            if verbatim {
                i += 1;
            }
            let quote = bytes[i];
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(syntax_at(
                        src,
                        start,
                        None,
                        "Unterminated string literal.".into(),
                    ));
                };
                if b == quote {
                    i += 1;
                    break;
                }
                if b == b'\\' && !verbatim {
                    let esc = bytes.get(i + 1).copied();
                    match esc {
                        Some(b'n') => s.push('\n'),
                        Some(b't') => s.push('\t'),
                        Some(b'r') => s.push('\r'),
                        Some(b'\\') => s.push('\\'),
                        Some(b'\'') => s.push('\''),
                        Some(b'"') => s.push('"'),
                        _ => {
                            return Err(syntax_at(
                                src,
                                i,
                                None,
                                "Invalid escape sequence in string literal.".into(),
                            ));
                        }
                    }
                    i += 2;
                    continue;
                }
                // Multi-byte UTF-8: copy the whole character.
                let ch_len = src[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                s.push_str(&src[i..i + ch_len]);
                i += ch_len;
            }
            push(&mut out, Tok::Str(s), i);
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            let mut is_real = false;
            if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                is_real = true;
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < bytes.len()
                && (bytes[j] == b'e' || bytes[j] == b'E')
                && bytes
                    .get(j + 1)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+')
            {
                is_real = true;
                j += 2;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let num_text = &src[i..j];
            // A unit suffix makes it a timespan literal (`1d`, `30m`, `100ms`).
            let mut k = j;
            while k < bytes.len() && bytes[k].is_ascii_alphabetic() {
                k += 1;
            }
            if k > j {
                let unit = &src[j..k];
                let Some(secs) = span_unit(unit) else {
                    return Err(syntax_at(
                        src,
                        start,
                        Some(&src[start..k]),
                        format!(
                            "Invalid literal '{}': unknown timespan unit '{unit}'.",
                            &src[start..k]
                        ),
                    ));
                };
                let n: f64 = num_text
                    .parse()
                    .map_err(|_| syntax_at(src, start, Some(num_text), "Invalid number.".into()))?;
                let Some(span) = Duration::checked_seconds_f64(n * secs) else {
                    return Err(syntax_at(
                        src,
                        start,
                        Some(&src[start..k]),
                        format!(
                            "Invalid literal '{}': the timespan is out of range.",
                            &src[start..k]
                        ),
                    ));
                };
                push(&mut out, Tok::Span(span), k);
                i = k;
                continue;
            }
            let tok =
                if is_real {
                    Tok::Real(num_text.parse().map_err(|_| {
                        syntax_at(src, start, Some(num_text), "Invalid number.".into())
                    })?)
                } else {
                    match num_text.parse::<i64>() {
                        Ok(n) => Tok::Long(n),
                        Err(_) => {
                            return Err(syntax_at(
                                src,
                                start,
                                Some(num_text),
                                "Integer literal out of range.".into(),
                            ));
                        }
                    }
                };
            push(&mut out, tok, j);
            i = j;
            continue;
        }
        if is_ident_start(c) {
            let mut j = i;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            // Hyphenated operator names.
            if j < bytes.len() && bytes[j] == b'-' {
                let mut k = j + 1;
                while k < bytes.len() && bytes[k].is_ascii_alphabetic() {
                    k += 1;
                }
                let candidate = &src[i..k];
                if HYPHEN_WORDS.contains(&candidate) {
                    j = k;
                }
            }
            // `in~`
            if &src[i..j] == "in" && bytes.get(j) == Some(&b'~') {
                j += 1;
            }
            let word = &src[i..j];
            // `datetime(...)` / `timespan(...)` take raw text up to the closing parenthesis.
            if word == "datetime" || word == "timespan" {
                let mut k = j;
                while k < bytes.len() && bytes[k] == b' ' {
                    k += 1;
                }
                if bytes.get(k) == Some(&b'(') {
                    let Some(close) = src[k..].find(')') else {
                        return Err(syntax_at(
                            src,
                            start,
                            Some(word),
                            format!("Unterminated {word}(...) literal."),
                        ));
                    };
                    let raw = src[k + 1..k + close]
                        .trim()
                        .trim_matches(|c| c == '\'' || c == '"')
                        .to_string();
                    let end = k + close + 1;
                    let tok = if word == "datetime" {
                        Tok::DateTimeLit(raw)
                    } else {
                        Tok::TimeSpanLit(raw)
                    };
                    push(&mut out, tok, end);
                    i = end;
                    continue;
                }
            }
            push(&mut out, Tok::Ident(word.to_string()), j);
            i = j;
            continue;
        }
        // `!` followed by a word: negated string operators (`!contains`, `!in`, ...).
        if c == b'!' && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphabetic()) {
            let mut j = i + 1;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if &src[i..j] == "!in" && bytes.get(j) == Some(&b'~') {
                j += 1;
            }
            push(&mut out, Tok::Ident(src[i..j].to_string()), j);
            i = j;
            continue;
        }
        // Bytes, not `&str`: the second byte may be the start of a multi-byte character
        // (`=é`), which a string slice would cut through.
        let two = bytes.get(i..i + 2).unwrap_or_default();
        let (tok, len) = match two {
            b"==" => (Tok::EqEq, 2),
            b"!=" | b"<>" => (Tok::NotEq, 2),
            b"<=" => (Tok::Le, 2),
            b">=" => (Tok::Ge, 2),
            b"=~" => (Tok::TildeEq, 2),
            b"!~" => (Tok::BangTilde, 2),
            b".." => (Tok::DotDot, 2),
            _ => match c {
                b'|' => (Tok::Pipe, 1),
                b',' => (Tok::Comma, 1),
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b'=' => (Tok::Assign, 1),
                b'<' => (Tok::Lt, 1),
                b'>' => (Tok::Gt, 1),
                b'+' => (Tok::Plus, 1),
                b'-' => (Tok::Minus, 1),
                b'*' => (Tok::Star, 1),
                b'/' => (Tok::Slash, 1),
                b'%' => (Tok::Percent, 1),
                b';' => (Tok::Semi, 1),
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(syntax_at(
                        src,
                        start,
                        Some(&ch.to_string()),
                        format!("Unexpected character '{ch}'."),
                    ));
                }
            },
        };
        push(&mut out, tok, i + len);
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        text: "<end of query>".into(),
    });
    Ok(out)
}
