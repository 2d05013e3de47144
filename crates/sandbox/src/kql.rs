//! A subset of the Kusto Query Language, shared by Graph `runHuntingQuery` and the Log
//! Analytics query API.
//!
//! Supported: optional scalar `let name = value;` statements, then a pipeline
//! `Source | op | op ...` where `Source` is a table name,
//! `union [withsource=Col] *`, `union T1, T2` or `union Prefix*`; the operators `where`
//! (`filter`), `take`/`limit`, `project`, `project-away`, `project-rename`, `extend`,
//! `summarize` (`count`, `countif`, `dcount`, `min`, `max`, `sum`, `avg`, `any`/`take_any`,
//! `make_set` … `by` keys incl. `bin(col, 1h)`), `order by`/`sort by`, `top N by`, `distinct`
//! and `count`. Expressions: literals (strings, numbers, `true`/`false`, timespans such as
//! `1d 24h 30m 10s 100ms`, `datetime(...)`, `timespan(...)`), column references, arithmetic,
//! comparisons (`== != < <= > >= =~ !~`), string operators (`contains has startswith endswith`
//! with `!` and `_cs` variants), `in`/`!in`/`in~`, `between`, `and`/`or`/`not()`, and the
//! functions `ago now bin floor tolower toupper strlen strcat substring tostring toint tolong
//! todouble toreal tobool isempty isnotempty isnull isnotnull iff iif startofday`.
//! Anything else is a syntax error naming the construct and its position, which is what a
//! model needs to correct its query.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::Value as Json;
use time::{Duration, OffsetDateTime};

use crate::util::{fmt_time, parse_time};

// ---------------------------------------------------------------------------------------
// Data model
// ---------------------------------------------------------------------------------------

/// Column types, named as Kusto names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColType {
    Bool,
    Int,
    Long,
    Real,
    String,
    DateTime,
    TimeSpan,
    Guid,
    Dynamic,
}

impl ColType {
    /// The type name in Log Analytics query responses (`columns[].type`).
    pub fn la_name(self) -> &'static str {
        match self {
            ColType::Bool => "bool",
            ColType::Int => "int",
            ColType::Long => "long",
            ColType::Real => "real",
            ColType::String => "string",
            ColType::DateTime => "datetime",
            ColType::TimeSpan => "timespan",
            ColType::Guid => "guid",
            ColType::Dynamic => "dynamic",
        }
    }

    /// The type name in Graph `runHuntingQuery` responses (`schema[].type`, .NET names).
    pub fn graph_name(self) -> &'static str {
        match self {
            ColType::Bool => "Boolean",
            ColType::Int => "Int32",
            ColType::Long => "Int64",
            ColType::Real => "Double",
            ColType::String | ColType::Guid => "String",
            ColType::DateTime => "DateTime",
            ColType::TimeSpan => "TimeSpan",
            ColType::Dynamic => "Object",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, ColType::Int | ColType::Long | ColType::Real)
    }
}

/// A cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    String(String),
    DateTime(OffsetDateTime),
    TimeSpan(Duration),
    Dynamic(Json),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Long(n) => Some(*n as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }

    fn is_empty_like(&self) -> bool {
        match self {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        }
    }

    /// Text form used by string operators and `tostring()`.
    fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Long(n) => n.to_string(),
            Value::Real(f) => f.to_string(),
            Value::String(s) => s.clone(),
            Value::DateTime(t) => fmt_time(*t),
            Value::TimeSpan(d) => fmt_timespan(*d),
            Value::Dynamic(j) => j.to_string(),
        }
    }

    /// JSON for Log Analytics rows (dynamic values are serialized strings, as the service
    /// returns them).
    pub fn to_la_json(&self) -> Json {
        match self {
            Value::Dynamic(j) => Json::String(j.to_string()),
            other => other.to_graph_json(),
        }
    }

    /// JSON for Graph hunting results.
    pub fn to_graph_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Long(n) => Json::from(*n),
            Value::Real(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.clone()),
            Value::DateTime(t) => Json::String(fmt_time(*t)),
            Value::TimeSpan(d) => Json::String(fmt_timespan(*d)),
            Value::Dynamic(j) => j.clone(),
        }
    }

    /// A hashable key for grouping and `dcount`/`distinct`.
    fn key(&self) -> String {
        match self {
            Value::Null => "\u{0}null".into(),
            Value::Bool(b) => format!("b:{b}"),
            Value::Long(n) => format!("n:{}", *n as f64),
            Value::Real(f) => format!("n:{f}"),
            Value::String(s) => format!("s:{s}"),
            Value::DateTime(t) => format!("t:{}", t.unix_timestamp_nanos()),
            Value::TimeSpan(d) => format!("d:{}", d.whole_nanoseconds()),
            Value::Dynamic(j) => format!("j:{j}"),
        }
    }
}

/// `[d.]hh:mm:ss[.fffffff]`, the Kusto timespan text form.
pub fn fmt_timespan(d: Duration) -> String {
    let neg = d.is_negative();
    let d = d.abs();
    let days = d.whole_days();
    let secs = d.whole_seconds() - days * 86400;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac = d.subsec_nanoseconds() / 100;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// A table: a schema and rows of cells in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            name: name.into(),
            columns,
            rows: Vec::new(),
        }
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Appends a row given as (column, value) pairs; missing columns are null.
    pub fn push_named(&mut self, cells: Vec<(&str, Value)>) {
        let mut row = vec![Value::Null; self.columns.len()];
        for (name, v) in cells {
            if let Some(i) = self.column_index(name) {
                row[i] = v;
            }
        }
        self.rows.push(row);
    }
}

/// A set of named tables a query runs against.
#[derive(Debug, Clone, Default)]
pub struct Database {
    pub tables: BTreeMap<String, Table>,
}

impl Database {
    pub fn insert(&mut self, table: Table) {
        self.tables.insert(table.name.clone(), table);
    }

    pub fn get(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }
}

/// What went wrong, with the position (1-based line, 0-based column) Kusto would report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
    pub line: usize,
    pub pos: usize,
    /// The offending token, when there is one.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    Syntax,
    Semantic,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (line {}, position {})",
            self.message, self.line, self.pos
        )
    }
}

impl std::error::Error for QueryError {}

/// Execution context: the clock for `now()`/`ago()` and an optional time window applied to
/// the source tables (the API's `timespan` parameter).
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub now: OffsetDateTime,
    pub window: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Columns the window filters on, first present wins (`TimeGenerated`, `Timestamp`).
    pub time_columns: Vec<String>,
    /// Row cap of the result (the services truncate large results).
    pub max_rows: usize,
}

impl ExecOptions {
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            window: None,
            time_columns: vec!["TimeGenerated".into(), "Timestamp".into()],
            max_rows: 30_000,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
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
struct Token {
    tok: Tok,
    start: usize,
    text: String,
}

/// Operators spelled with a hyphen (`project-away`): the lexer joins them into one word.
const HYPHEN_WORDS: &[&str] = &[
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

fn line_pos(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i - 1).unwrap_or(offset);
    (line, col)
}

fn syntax_at(src: &str, offset: usize, token: Option<&str>, message: String) -> QueryError {
    let (line, pos) = line_pos(src, offset);
    QueryError {
        kind: QueryErrorKind::Syntax,
        message,
        line,
        pos,
        token: token.map(str::to_string),
    }
}

fn span_unit(unit: &str) -> Option<f64> {
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

fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
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

// ---------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    EqCi,
    NeCi,
    And,
    Or,
    /// String operator by name (`contains`, `!has_cs`, ...).
    Str(StrOp, bool, bool),
}

/// String operator; the two flags are (negated, case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrOp {
    Contains,
    Has,
    StartsWith,
    EndsWith,
    HasPrefix,
}

fn str_op(word: &str) -> Option<BinOp> {
    let (neg, w) = match word.strip_prefix('!') {
        Some(w) => (true, w),
        None => (false, word),
    };
    let (cs, w) = match w.strip_suffix("_cs") {
        Some(w) => (true, w),
        None => (false, w),
    };
    let op = match w {
        "contains" => StrOp::Contains,
        "has" => StrOp::Has,
        "startswith" => StrOp::StartsWith,
        "endswith" => StrOp::EndsWith,
        "hasprefix" => StrOp::HasPrefix,
        _ => return None,
    };
    Some(BinOp::Str(op, neg, cs))
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Col {
        name: String,
        at: usize,
    },
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        ci: bool,
    },
    Between {
        expr: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        negated: bool,
    },
    Call {
        name: String,
        args: Vec<Expr>,
        at: usize,
    },
}

impl Expr {
    /// The number of nodes; the recursion is as deep as the expression, which the parser
    /// bounds.
    fn nodes(&self) -> usize {
        1 + match self {
            Expr::Lit(_) | Expr::Col { .. } => 0,
            Expr::Neg(inner) => inner.nodes(),
            Expr::Bin(_, l, r) => l.nodes() + r.nodes(),
            Expr::In { expr, list, .. } => {
                expr.nodes() + list.iter().map(Expr::nodes).sum::<usize>()
            }
            Expr::Between { expr, lo, hi, .. } => expr.nodes() + lo.nodes() + hi.nodes(),
            Expr::Call { args, .. } => args.iter().map(Expr::nodes).sum(),
        }
    }
}

#[derive(Debug, Clone)]
struct NamedExpr {
    name: Option<String>,
    expr: Expr,
}

#[derive(Debug, Clone)]
struct SortKey {
    expr: Expr,
    desc: bool,
    nulls_first: Option<bool>,
}

#[derive(Debug, Clone)]
enum Source {
    Table {
        name: String,
        at: usize,
    },
    Union {
        with_source: Option<String>,
        tables: Vec<(String, usize)>,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Where(Expr),
    Take(Expr),
    Project(Vec<NamedExpr>),
    ProjectAway(Vec<(String, usize)>),
    ProjectRename(Vec<(String, String, usize)>),
    Extend(Vec<NamedExpr>),
    Summarize {
        aggs: Vec<NamedExpr>,
        by: Vec<NamedExpr>,
    },
    Sort(Vec<SortKey>),
    Top {
        n: Expr,
        key: SortKey,
    },
    Distinct(Option<Vec<NamedExpr>>),
    Count,
}

#[derive(Debug, Clone)]
struct Query {
    source: Source,
    ops: Vec<(Op, usize, &'static str)>,
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

const SUPPORTED_OPERATORS: &str = "where, filter, take, limit, project, project-away, project-rename, extend, summarize, order by, sort by, top, distinct, count";

/// How deep expressions may nest in parentheses, call arguments, `in` lists and minus signs.
/// The parser recurses once per level, so a query of a hundred thousand `(` would otherwise
/// overflow the serving thread's stack and take the whole sandbox down; a level costs about
/// 23 KB of stack in a debug build, and a thread has 2 MiB.
const MAX_NESTING: usize = 32;

/// How deep an expression tree may be (nesting plus chains such as `a or b or c ...`).
/// Binding, evaluating and dropping an expression recurse once per level, about 7 KB each in
/// a debug build.
const MAX_DEPTH: usize = 128;

/// How many expression nodes the uses of `let` names may copy in all: each use copies the
/// bound expression, so `let b = a + a; let c = b + b; ...` grows exponentially.
const MAX_LET_NODES: usize = 100_000;

/// An expression and its depth (the longest path to a leaf), which the parser keeps within
/// [`MAX_DEPTH`].
type Parsed = (Expr, usize);

/// A `let` binding: the expression, its depth and its number of nodes.
struct LetValue {
    expr: Expr,
    depth: usize,
    nodes: usize,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Scalar `let` bindings, substituted where the name is used.
    lets: HashMap<String, LetValue>,
    /// How many `unary` calls are active: the parser's own recursion depth, within
    /// [`MAX_NESTING`].
    nesting: usize,
    /// Nodes copied by the uses of `let` names so far.
    let_nodes: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn cur(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.cur().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_here(&self, message: impl Into<String>) -> QueryError {
        let t = self.cur();
        let message = message.into();
        syntax_at(self.src, t.start, Some(&t.text), message)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == w)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, QueryError> {
        if *self.peek() == tok {
            Ok(self.bump())
        } else {
            let found = self.cur().text.clone();
            Err(self.err_here(format!("Expected {what} but found '{found}'.")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, usize), QueryError> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let t = self.bump();
                Ok((name, t.start))
            }
            _ => {
                let found = self.cur().text.clone();
                Err(self.err_here(format!("Expected {what} but found '{found}'.")))
            }
        }
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        // `let name = scalar;` statements (tabular lets are not supported).
        while self.is_word("let") {
            self.bump();
            let (name, _) = self.ident("a name after 'let'")?;
            self.expect(Tok::Assign, "'=' in the let statement")?;
            if let Tok::Ident(w) = self.peek().clone()
                && *self.peek_at(1) == Tok::Pipe
            {
                return Err(self.err_here(format!("Tabular let statements ('let {name} = {w} | ...') are not supported by the sandbox; only scalar values.")));
            }
            let (expr, depth) = self.or_expr()?;
            self.expect(Tok::Semi, "';' ending the let statement")?;
            let nodes = expr.nodes();
            self.lets.insert(name, LetValue { expr, depth, nodes });
        }
        let source = self.source()?;
        let mut ops = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.bump();
            ops.push(self.operator()?);
        }
        while *self.peek() == Tok::Semi {
            self.bump();
        }
        if *self.peek() != Tok::Eof {
            let found = self.cur().text.clone();
            return Err(self.err_here(format!(
                "Query could not be parsed at '{found}': expected '|' or the end of the query."
            )));
        }
        Ok(Query { source, ops })
    }

    fn source(&mut self) -> Result<Source, QueryError> {
        let t = self.cur().clone();
        match &t.tok {
            Tok::Ident(w) if w == "union" => {
                self.bump();
                let mut with_source = None;
                // Parameters: withsource=Col, isfuzzy=true, kind=outer|inner.
                loop {
                    let is_param = matches!(self.peek(), Tok::Ident(_)) && *self.peek_at(1) == Tok::Assign;
                    if !is_param {
                        break;
                    }
                    let (param, _) = self.ident("a union parameter")?;
                    self.bump();
                    match param.as_str() {
                        "withsource" => with_source = Some(self.ident("a column name")?.0),
                        "isfuzzy" | "kind" => {
                            self.bump();
                        }
                        other => return Err(self.err_here(format!("Unsupported union parameter '{other}'."))),
                    }
                }
                let mut tables = Vec::new();
                loop {
                    let t = self.cur().clone();
                    match &t.tok {
                        Tok::Star => {
                            self.bump();
                            tables.push(("*".to_string(), t.start));
                        }
                        Tok::Ident(name) => {
                            self.bump();
                            // `Device*` wildcard: the star follows immediately.
                            if *self.peek() == Tok::Star && self.cur().start == t.start + name.len() {
                                self.bump();
                                tables.push((format!("{name}*"), t.start));
                            } else {
                                tables.push((name.clone(), t.start));
                            }
                        }
                        Tok::LParen => return Err(self.err_here("Subqueries in union are not supported by the sandbox.")),
                        _ => {
                            let found = t.text.clone();
                            return Err(self.err_here(format!("Expected a table name after 'union' but found '{found}'.")));
                        }
                    }
                    if *self.peek() == Tok::Comma {
                        self.bump();
                    } else {
                        break;
                    }
                }
                Ok(Source::Union { with_source, tables })
            }
            Tok::Ident(w) if ["search", "print", "find", "range", "datatable", "externaldata", "evaluate"].contains(&w.as_str()) => {
                Err(self.err_here(format!("'{w}' is not supported by the sandbox; start the query with a table name or union.")))
            }
            Tok::Ident(name) => {
                self.bump();
                Ok(Source::Table { name: name.clone(), at: t.start })
            }
            _ => {
                let found = t.text.clone();
                Err(self.err_here(format!("Query could not be parsed at '{found}': expected a table name.")))
            }
        }
    }

    fn operator(&mut self) -> Result<(Op, usize, &'static str), QueryError> {
        let t = self.cur().clone();
        let Tok::Ident(word) = &t.tok else {
            let found = t.text.clone();
            return Err(self.err_here(format!(
                "Expected a query operator after '|' but found '{found}'."
            )));
        };
        self.bump();
        let op = match word.as_str() {
            "where" | "filter" => (Op::Where(self.expr()?), "where"),
            "take" | "limit" => (Op::Take(self.expr()?), "take"),
            "project" => (Op::Project(self.named_list(false)?), "project"),
            "extend" => (Op::Extend(self.named_list(false)?), "extend"),
            "project-away" => {
                let mut cols = vec![self.ident("a column name")?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    cols.push(self.ident("a column name")?);
                }
                (Op::ProjectAway(cols), "project-away")
            }
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let (new, _) = self.ident("a new column name")?;
                    self.expect(Tok::Assign, "'='")?;
                    let (old, at) = self.ident("an existing column name")?;
                    pairs.push((new, old, at));
                    if *self.peek() == Tok::Comma {
                        self.bump();
                    } else {
                        break;
                    }
                }
                (Op::ProjectRename(pairs), "project-rename")
            }
            "summarize" => {
                let aggs = if self.is_word("by") {
                    Vec::new()
                } else {
                    self.named_list(true)?
                };
                let by = if self.is_word("by") {
                    self.bump();
                    self.named_list(false)?
                } else {
                    Vec::new()
                };
                if aggs.is_empty() && by.is_empty() {
                    return Err(
                        self.err_here("summarize needs at least one aggregation or 'by' key.")
                    );
                }
                (Op::Summarize { aggs, by }, "summarize")
            }
            "order" | "sort" => {
                if !self.is_word("by") {
                    return Err(self.err_here(format!("Expected 'by' after '{word}'.")));
                }
                self.bump();
                let mut keys = vec![self.sort_key()?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    keys.push(self.sort_key()?);
                }
                (Op::Sort(keys), "order by")
            }
            "top" => {
                let (n, _) = self.add_expr()?;
                if !self.is_word("by") {
                    return Err(self.err_here("Expected 'by' in 'top N by column'."));
                }
                self.bump();
                let key = self.sort_key()?;
                (Op::Top { n, key }, "top")
            }
            "distinct" => {
                if *self.peek() == Tok::Star {
                    self.bump();
                    (Op::Distinct(None), "distinct")
                } else {
                    (Op::Distinct(Some(self.named_list(false)?)), "distinct")
                }
            }
            "count" => (Op::Count, "count"),
            other => {
                return Err(syntax_at(
                    self.src,
                    t.start,
                    Some(other),
                    format!(
                        "Unsupported query operator '{other}'. The sandbox supports: {SUPPORTED_OPERATORS}."
                    ),
                ));
            }
        };
        Ok((op.0, t.start, op.1))
    }

    fn sort_key(&mut self) -> Result<SortKey, QueryError> {
        let expr = self.expr()?;
        let mut desc = true;
        if self.is_word("asc") {
            self.bump();
            desc = false;
        } else if self.is_word("desc") {
            self.bump();
        }
        let mut nulls_first = None;
        if self.is_word("nulls") {
            self.bump();
            if self.is_word("first") {
                nulls_first = Some(true);
            } else if self.is_word("last") {
                nulls_first = Some(false);
            } else {
                return Err(self.err_here("Expected 'first' or 'last' after 'nulls'."));
            }
            self.bump();
        }
        Ok(SortKey {
            expr,
            desc,
            nulls_first,
        })
    }

    /// `a, b = expr, expr`; in summarize the items are aggregations.
    fn named_list(&mut self, _aggs: bool) -> Result<Vec<NamedExpr>, QueryError> {
        let mut items = Vec::new();
        loop {
            let named = matches!(self.peek(), Tok::Ident(_)) && *self.peek_at(1) == Tok::Assign;
            let name = if named {
                let (n, _) = self.ident("a column name")?;
                self.bump();
                Some(n)
            } else {
                None
            };
            let expr = self.expr()?;
            items.push(NamedExpr { name, expr });
            if *self.peek() == Tok::Comma {
                self.bump();
            } else {
                break;
            }
        }
        Ok(items)
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        Ok(self.or_expr()?.0)
    }

    /// The depth of a node over children of the given depths, refused past [`MAX_DEPTH`].
    fn node(&self, children: impl IntoIterator<Item = usize>) -> Result<usize, QueryError> {
        let depth = children.into_iter().max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(self.err_here(format!(
                "The expression is more than {MAX_DEPTH} operations deep, which the sandbox does not evaluate; 'in (...)' replaces a long chain of 'or'."
            )));
        }
        Ok(depth)
    }

    fn or_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.and_expr()?;
        while self.is_word("or") {
            self.bump();
            let (right, right_depth) = self.and_expr()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn and_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.cmp_expr()?;
        while self.is_word("and") {
            self.bump();
            let (right, right_depth) = self.cmp_expr()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn cmp_expr(&mut self) -> Result<Parsed, QueryError> {
        let (left, left_depth) = self.add_expr()?;
        let op = match self.peek().clone() {
            Tok::EqEq => Some(BinOp::Eq),
            Tok::NotEq => Some(BinOp::Ne),
            Tok::Lt => Some(BinOp::Lt),
            Tok::Le => Some(BinOp::Le),
            Tok::Gt => Some(BinOp::Gt),
            Tok::Ge => Some(BinOp::Ge),
            Tok::TildeEq => Some(BinOp::EqCi),
            Tok::BangTilde => Some(BinOp::NeCi),
            Tok::Assign => {
                return Err(self.err_here("Use '==' to compare values ('=' only names a column)."));
            }
            Tok::Ident(w) => {
                if let Some(op) = str_op(&w) {
                    Some(op)
                } else if ["in", "!in", "in~", "!in~"].contains(&w.as_str()) {
                    self.bump();
                    self.expect(Tok::LParen, "'(' after 'in'")?;
                    let mut list = Vec::new();
                    let mut depth = left_depth;
                    if *self.peek() != Tok::RParen {
                        loop {
                            let (item, item_depth) = self.add_expr()?;
                            depth = depth.max(item_depth);
                            list.push(item);
                            if *self.peek() == Tok::Comma {
                                self.bump();
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect(Tok::RParen, "')' closing the 'in' list")?;
                    let depth = self.node([depth])?;
                    let expr = Expr::In {
                        expr: Box::new(left),
                        list,
                        negated: w.starts_with('!'),
                        ci: w.ends_with('~'),
                    };
                    return Ok((expr, depth));
                } else if w == "between" || w == "!between" {
                    self.bump();
                    self.expect(Tok::LParen, "'(' after 'between'")?;
                    let (lo, lo_depth) = self.add_expr()?;
                    self.expect(Tok::DotDot, "'..' in 'between (a .. b)'")?;
                    let (hi, hi_depth) = self.add_expr()?;
                    self.expect(Tok::RParen, "')' closing 'between'")?;
                    let depth = self.node([left_depth, lo_depth, hi_depth])?;
                    let expr = Expr::Between {
                        expr: Box::new(left),
                        lo: Box::new(lo),
                        hi: Box::new(hi),
                        negated: w.starts_with('!'),
                    };
                    return Ok((expr, depth));
                } else if ["matches", "has_any", "has_all", "contains_any", "!has_any"]
                    .contains(&w.as_str())
                    || w.starts_with('!')
                {
                    return Err(self.err_here(format!(
                        "The operator '{w}' is not supported by the sandbox."
                    )));
                } else {
                    None
                }
            }
            _ => None,
        };
        match op {
            Some(op) => {
                self.bump();
                let (right, right_depth) = self.add_expr()?;
                let depth = self.node([left_depth, right_depth])?;
                Ok((Expr::Bin(op, Box::new(left), Box::new(right)), depth))
            }
            None => Ok((left, left_depth)),
        }
    }

    fn add_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.mul_expr()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => break,
            };
            self.bump();
            let (right, right_depth) = self.mul_expr()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn mul_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Mod,
                _ => break,
            };
            self.bump();
            let (right, right_depth) = self.unary()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    /// Every nested expression (parentheses, call arguments, `in` lists, minus signs) is
    /// parsed through here, so this is where the parser's own recursion is bounded.
    fn unary(&mut self) -> Result<Parsed, QueryError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.err_here(format!(
                "Parentheses, function calls and signs nest more than {MAX_NESTING} levels deep, which the sandbox does not parse."
            )));
        }
        self.nesting += 1;
        let parsed = self.signed();
        self.nesting -= 1;
        parsed
    }

    fn signed(&mut self) -> Result<Parsed, QueryError> {
        if *self.peek() == Tok::Minus {
            self.bump();
            let (inner, inner_depth) = self.unary()?;
            let depth = self.node([inner_depth])?;
            return Ok((Expr::Neg(Box::new(inner)), depth));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Parsed, QueryError> {
        let t = self.cur().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.bump();
                Ok((Expr::Lit(Value::String(s.clone())), 1))
            }
            Tok::Long(n) => {
                self.bump();
                Ok((Expr::Lit(Value::Long(*n)), 1))
            }
            Tok::Real(f) => {
                self.bump();
                Ok((Expr::Lit(Value::Real(*f)), 1))
            }
            Tok::Span(d) => {
                self.bump();
                Ok((Expr::Lit(Value::TimeSpan(*d)), 1))
            }
            Tok::DateTimeLit(raw) => {
                self.bump();
                match parse_time(raw) {
                    Some(dt) => Ok((Expr::Lit(Value::DateTime(dt)), 1)),
                    None => Err(syntax_at(
                        self.src,
                        t.start,
                        Some(&t.text),
                        format!("Invalid datetime literal 'datetime({raw})'."),
                    )),
                }
            }
            Tok::TimeSpanLit(raw) => {
                self.bump();
                match parse_timespan_text(raw) {
                    Some(d) => Ok((Expr::Lit(Value::TimeSpan(d)), 1)),
                    None => Err(syntax_at(
                        self.src,
                        t.start,
                        Some(&t.text),
                        format!("Invalid timespan literal 'timespan({raw})'."),
                    )),
                }
            }
            Tok::LParen => {
                self.bump();
                let parsed = self.or_expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(parsed)
            }
            Tok::Ident(name) => {
                self.bump();
                match name.as_str() {
                    "true" => return Ok((Expr::Lit(Value::Bool(true)), 1)),
                    "false" => return Ok((Expr::Lit(Value::Bool(false)), 1)),
                    _ => {}
                }
                if *self.peek() == Tok::LParen {
                    self.bump();
                    let mut args = Vec::new();
                    let mut args_depth = 0;
                    if *self.peek() != Tok::RParen {
                        loop {
                            // `count()` style aggregations may also be written `count(*)`.
                            if *self.peek() == Tok::Star {
                                self.bump();
                            } else {
                                let (arg, arg_depth) = self.or_expr()?;
                                args_depth = args_depth.max(arg_depth);
                                args.push(arg);
                            }
                            if *self.peek() == Tok::Comma {
                                self.bump();
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect(Tok::RParen, &format!("')' closing {name}("))?;
                    let depth = self.node([args_depth])?;
                    let call = Expr::Call {
                        name: name.clone(),
                        args,
                        at: t.start,
                    };
                    return Ok((call, depth));
                }
                if let Some(bound) = self.lets.get(name) {
                    self.let_nodes = self.let_nodes.saturating_add(bound.nodes);
                    if self.let_nodes > MAX_LET_NODES {
                        return Err(syntax_at(
                            self.src,
                            t.start,
                            Some(name),
                            format!(
                                "The uses of let names expand to more than {MAX_LET_NODES} expression nodes, which the sandbox does not evaluate."
                            ),
                        ));
                    }
                    return Ok((bound.expr.clone(), bound.depth));
                }
                let column = Expr::Col {
                    name: name.clone(),
                    at: t.start,
                };
                Ok((column, 1))
            }
            Tok::Eof => Err(self.err_here("Unexpected end of query: an expression was expected.")),
            _ => {
                let found = t.text.clone();
                Err(self.err_here(format!(
                    "Query could not be parsed at '{found}': an expression was expected."
                )))
            }
        }
    }
}

/// `1d`, `2h`, `01:00:00`, `1.02:00:00`.
fn parse_timespan_text(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(toks) = lex(raw)
        && let [
            Token {
                tok: Tok::Span(d), ..
            },
            Token { tok: Tok::Eof, .. },
        ] = toks.as_slice()
    {
        return Some(*d);
    }
    let (days, rest) = match raw.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<i64>().ok()?, r),
        _ => (0, raw),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    let s: f64 = parts[2].parse().ok()?;
    // Checked throughout: `timespan(999999999999999.00:00:00)` and `timespan(0:0:NaN)` are
    // invalid literals, not overflows.
    Duration::seconds(days.checked_mul(86400)?)
        .checked_add(Duration::seconds(h.checked_mul(3600)?))?
        .checked_add(Duration::seconds(m.checked_mul(60)?))?
        .checked_add(Duration::checked_seconds_f64(s)?)
}

/// Parses a query without running it (syntax errors only), e.g. to validate a detection
/// rule's query text.
pub fn check_syntax(query: &str) -> Result<(), QueryError> {
    parse(query).map(|_| ())
}

fn parse(query: &str) -> Result<Query, QueryError> {
    let trimmed = query.trim_start();
    if trimmed.starts_with('.') {
        let offset = query.len() - trimmed.len();
        let word: String = trimmed.chars().take_while(|c| !c.is_whitespace()).collect();
        return Err(syntax_at(
            query,
            offset,
            Some("."),
            format!(
                "Query could not be parsed at '.': control commands such as '{word}' are not supported by this API."
            ),
        ));
    }
    if trimmed.is_empty() {
        return Err(syntax_at(query, 0, None, "The query is empty.".into()));
    }
    let toks = lex(query)?;
    let mut p = Parser {
        src: query,
        toks,
        pos: 0,
        lets: HashMap::new(),
        nesting: 0,
        let_nodes: 0,
    };
    p.query()
}

// ---------------------------------------------------------------------------------------
// Binding and evaluation
// ---------------------------------------------------------------------------------------

/// An expression bound to a schema: columns are indexes, functions are resolved.
#[derive(Debug, Clone)]
enum Bound {
    Lit(Value),
    Col(usize),
    Neg(Box<Bound>),
    Bin(BinOp, Box<Bound>, Box<Bound>),
    In {
        expr: Box<Bound>,
        list: Vec<Bound>,
        negated: bool,
        ci: bool,
    },
    Between {
        expr: Box<Bound>,
        lo: Box<Bound>,
        hi: Box<Bound>,
        negated: bool,
    },
    Call(Func, Vec<Bound>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Ago,
    Now,
    Bin,
    ToLower,
    ToUpper,
    StrLen,
    StrCat,
    Substring,
    ToString,
    ToLong,
    ToReal,
    ToBool,
    IsEmpty,
    IsNotEmpty,
    IsNull,
    IsNotNull,
    Not,
    Iff,
    StartOfDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggFunc {
    Count,
    CountIf,
    DCount,
    Min,
    Max,
    Sum,
    Avg,
    Any,
    MakeSet,
    MakeList,
}

struct Ctx<'a> {
    src: &'a str,
    op: &'static str,
    opts: &'a ExecOptions,
}

impl Ctx<'_> {
    fn semantic(&self, at: usize, message: String) -> QueryError {
        let (line, pos) = line_pos(self.src, at);
        QueryError {
            kind: QueryErrorKind::Semantic,
            message: format!("'{}' operator: {message}", self.op),
            line,
            pos,
            token: None,
        }
    }
}

fn resolve_col(
    ctx: &Ctx<'_>,
    schema: &[Column],
    name: &str,
    at: usize,
) -> Result<usize, QueryError> {
    schema.iter().position(|c| c.name == name).ok_or_else(|| {
        let hint = schema
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| {
                format!(
                    " Column names are case-sensitive: did you mean '{}'?",
                    c.name
                )
            })
            .unwrap_or_default();
        ctx.semantic(
            at,
            format!("Failed to resolve scalar expression named '{name}'.{hint}"),
        )
    })
}

fn bind(ctx: &Ctx<'_>, e: &Expr, schema: &[Column]) -> Result<(Bound, ColType), QueryError> {
    Ok(match e {
        Expr::Lit(v) => (Bound::Lit(v.clone()), lit_type(v)),
        Expr::Col { name, at } => {
            let i = resolve_col(ctx, schema, name, *at)?;
            (Bound::Col(i), schema[i].ty)
        }
        Expr::Neg(inner) => {
            let (b, t) = bind(ctx, inner, schema)?;
            (Bound::Neg(Box::new(b)), t)
        }
        Expr::Bin(op, l, r) => {
            let (lb, lt) = bind(ctx, l, schema)?;
            let (rb, rt) = bind(ctx, r, schema)?;
            let ty = match op {
                BinOp::Add | BinOp::Sub => match (lt, rt) {
                    (ColType::DateTime, ColType::TimeSpan) => ColType::DateTime,
                    (ColType::TimeSpan, ColType::DateTime) => ColType::DateTime,
                    (ColType::DateTime, ColType::DateTime) => ColType::TimeSpan,
                    (ColType::TimeSpan, ColType::TimeSpan) => ColType::TimeSpan,
                    (a, b) if a == ColType::Real || b == ColType::Real => ColType::Real,
                    (a, b) if a.is_numeric() && b.is_numeric() => ColType::Long,
                    _ => ColType::Dynamic,
                },
                BinOp::Mul | BinOp::Div | BinOp::Mod => match (lt, rt) {
                    (ColType::TimeSpan, b) if b.is_numeric() => ColType::TimeSpan,
                    (ColType::TimeSpan, ColType::TimeSpan) if *op == BinOp::Div => ColType::Real,
                    (a, b) if a == ColType::Real || b == ColType::Real => ColType::Real,
                    _ => ColType::Long,
                },
                _ => ColType::Bool,
            };
            (Bound::Bin(*op, Box::new(lb), Box::new(rb)), ty)
        }
        Expr::In {
            expr,
            list,
            negated,
            ci,
        } => {
            let (b, _) = bind(ctx, expr, schema)?;
            let list = list
                .iter()
                .map(|x| bind(ctx, x, schema).map(|(b, _)| b))
                .collect::<Result<_, _>>()?;
            (
                Bound::In {
                    expr: Box::new(b),
                    list,
                    negated: *negated,
                    ci: *ci,
                },
                ColType::Bool,
            )
        }
        Expr::Between {
            expr,
            lo,
            hi,
            negated,
        } => {
            let (b, _) = bind(ctx, expr, schema)?;
            let (lo, _) = bind(ctx, lo, schema)?;
            let (hi, _) = bind(ctx, hi, schema)?;
            (
                Bound::Between {
                    expr: Box::new(b),
                    lo: Box::new(lo),
                    hi: Box::new(hi),
                    negated: *negated,
                },
                ColType::Bool,
            )
        }
        Expr::Call { name, args, at } => {
            if agg_func(name).is_some() {
                return Err(ctx.semantic(
                    *at,
                    format!("the aggregation function '{name}()' can only be used in 'summarize'."),
                ));
            }
            let (func, arity, ret): (Func, (usize, usize), Option<ColType>) = match name.as_str() {
                "ago" => (Func::Ago, (1, 1), Some(ColType::DateTime)),
                "now" => (Func::Now, (0, 1), Some(ColType::DateTime)),
                "bin" | "floor" => (Func::Bin, (2, 2), None),
                "tolower" => (Func::ToLower, (1, 1), Some(ColType::String)),
                "toupper" => (Func::ToUpper, (1, 1), Some(ColType::String)),
                "strlen" => (Func::StrLen, (1, 1), Some(ColType::Long)),
                "strcat" => (Func::StrCat, (1, 64), Some(ColType::String)),
                "substring" => (Func::Substring, (2, 3), Some(ColType::String)),
                "tostring" => (Func::ToString, (1, 1), Some(ColType::String)),
                "toint" | "tolong" => (Func::ToLong, (1, 1), Some(ColType::Long)),
                "todouble" | "toreal" => (Func::ToReal, (1, 1), Some(ColType::Real)),
                "tobool" | "toboolean" => (Func::ToBool, (1, 1), Some(ColType::Bool)),
                "isempty" => (Func::IsEmpty, (1, 1), Some(ColType::Bool)),
                "isnotempty" => (Func::IsNotEmpty, (1, 1), Some(ColType::Bool)),
                "isnull" => (Func::IsNull, (1, 1), Some(ColType::Bool)),
                "isnotnull" => (Func::IsNotNull, (1, 1), Some(ColType::Bool)),
                "not" => (Func::Not, (1, 1), Some(ColType::Bool)),
                "iff" | "iif" => (Func::Iff, (3, 3), None),
                "startofday" => (Func::StartOfDay, (1, 1), Some(ColType::DateTime)),
                other => {
                    return Err(ctx.semantic(*at, format!("Unknown function: '{other}'. The sandbox supports ago, now, bin, floor, tolower, toupper, strlen, strcat, substring, tostring, toint, tolong, todouble, toreal, tobool, isempty, isnotempty, isnull, isnotnull, not, iff, iif, startofday.")));
                }
            };
            if args.len() < arity.0 || args.len() > arity.1 {
                return Err(ctx.semantic(
                    *at,
                    format!(
                        "function '{name}' expects {} argument(s), got {}.",
                        if arity.0 == arity.1 {
                            arity.0.to_string()
                        } else {
                            format!("{}..{}", arity.0, arity.1)
                        },
                        args.len()
                    ),
                ));
            }
            let mut bound = Vec::new();
            let mut types = Vec::new();
            for a in args {
                let (b, t) = bind(ctx, a, schema)?;
                bound.push(b);
                types.push(t);
            }
            let ty = ret.unwrap_or_else(|| match func {
                Func::Bin => types[0],
                Func::Iff => types[1],
                _ => ColType::Dynamic,
            });
            (Bound::Call(func, bound), ty)
        }
    })
}

fn lit_type(v: &Value) -> ColType {
    match v {
        Value::Null => ColType::Dynamic,
        Value::Bool(_) => ColType::Bool,
        Value::Long(_) => ColType::Long,
        Value::Real(_) => ColType::Real,
        Value::String(_) => ColType::String,
        Value::DateTime(_) => ColType::DateTime,
        Value::TimeSpan(_) => ColType::TimeSpan,
        Value::Dynamic(_) => ColType::Dynamic,
    }
}

fn agg_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "countif" => AggFunc::CountIf,
        "dcount" => AggFunc::DCount,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "any" | "take_any" => AggFunc::Any,
        "make_set" => AggFunc::MakeSet,
        "make_list" => AggFunc::MakeList,
        _ => return None,
    })
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Long(x), Value::Long(y)) => Some(x.cmp(y)),
        (x, y) if x.as_f64().is_some() && y.as_f64().is_some() => {
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        // A datetime compared with a string literal: parse the string (lenient, as Kusto
        // converts literals).
        (Value::DateTime(x), Value::String(y)) => parse_time(y).map(|y| x.cmp(&y)),
        (Value::String(x), Value::DateTime(y)) => parse_time(x).map(|x| x.cmp(y)),
        (Value::TimeSpan(x), Value::TimeSpan(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Dynamic(x), Value::Dynamic(y)) => Some(x.to_string().cmp(&y.to_string())),
        _ => None,
    }
}

/// The order `order by`, `sort by` and `top` sort non-null values in. Unlike [`compare`] it is
/// total, as `sort_by` requires (it may panic otherwise): NaN sorts after every number, and
/// values of different types (a column of mixed `iff` results) sort by type.
fn sort_order(a: &Value, b: &Value) -> Ordering {
    let real = |x: f64, y: f64| {
        x.partial_cmp(&y)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
    };
    // Exact, so that it agrees with the exact comparison of two longs beyond 2^53.
    let long_real = |x: i64, y: f64| {
        if y.is_nan() {
            return Ordering::Less;
        }
        match (x as f64).partial_cmp(&y) {
            Some(Ordering::Less) => Ordering::Less,
            Some(Ordering::Greater) => Ordering::Greater,
            // Equal as doubles: `y` is a whole number within 2^63, exact as an i128.
            _ => i128::from(x).cmp(&(y as i128)),
        }
    };
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Long(_) | Value::Real(_) => 2,
        Value::DateTime(_) => 3,
        Value::TimeSpan(_) => 4,
        Value::String(_) => 5,
        Value::Dynamic(_) => 6,
    };
    match (a, b) {
        (Value::Long(x), Value::Long(y)) => x.cmp(y),
        (Value::Real(x), Value::Real(y)) => real(*x, *y),
        (Value::Long(x), Value::Real(y)) => long_real(*x, *y),
        (Value::Real(x), Value::Long(y)) => long_real(*y, *x).reverse(),
        // Values of one other type compare as `compare` has them; types apart sort by type.
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| compare(a, b).unwrap_or(Ordering::Equal)),
    }
}

fn values_equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(x), Value::String(y)) | (Value::String(y), Value::Bool(x)) => {
            Some(x.to_string() == y.to_lowercase())
        }
        _ => compare(a, b).map(|o| o == Ordering::Equal),
    }
}

/// Kusto `has`: whole-term match, case-insensitive. Terms are runs of alphanumerics.
fn has_term(hay: &str, needle: &str, cs: bool) -> bool {
    let (hay, needle) = if cs {
        (hay.to_string(), needle.to_string())
    } else {
        (hay.to_lowercase(), needle.to_lowercase())
    };
    if needle.is_empty() {
        return true;
    }
    if !needle.chars().all(char::is_alphanumeric) {
        // A needle with punctuation matches as a substring bounded by term edges.
        return hay.match_indices(&needle).any(|(i, _)| {
            let before = hay[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after = hay[i + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            before && after
        });
    }
    hay.split(|c: char| !c.is_alphanumeric())
        .any(|t| t == needle)
}

fn eval(b: &Bound, row: &[Value], opts: &ExecOptions) -> Value {
    match b {
        Bound::Lit(v) => v.clone(),
        Bound::Col(i) => row.get(*i).cloned().unwrap_or(Value::Null),
        // Long arithmetic wraps as `+`, `-` and `*` do; a timespan or date past its range is
        // null, as an out-of-range value is in Kusto.
        Bound::Neg(inner) => match eval(inner, row, opts) {
            Value::Long(n) => Value::Long(n.wrapping_neg()),
            Value::Real(f) => Value::Real(-f),
            Value::TimeSpan(d) => d.checked_neg().map_or(Value::Null, Value::TimeSpan),
            _ => Value::Null,
        },
        Bound::Bin(op, l, r) => {
            // Short-circuit logic; null counts as false.
            if *op == BinOp::And {
                return Value::Bool(
                    eval(l, row, opts) == Value::Bool(true)
                        && eval(r, row, opts) == Value::Bool(true),
                );
            }
            if *op == BinOp::Or {
                return Value::Bool(
                    eval(l, row, opts) == Value::Bool(true)
                        || eval(r, row, opts) == Value::Bool(true),
                );
            }
            let a = eval(l, row, opts);
            let c = eval(r, row, opts);
            binary(*op, &a, &c)
        }
        Bound::In {
            expr,
            list,
            negated,
            ci,
        } => {
            let v = eval(expr, row, opts);
            if v == Value::Null {
                return Value::Bool(*negated);
            }
            let found = list.iter().any(|x| {
                let x = eval(x, row, opts);
                if *ci {
                    v.to_text().to_lowercase() == x.to_text().to_lowercase()
                } else {
                    values_equal(&v, &x) == Some(true)
                }
            });
            Value::Bool(found != *negated)
        }
        Bound::Between {
            expr,
            lo,
            hi,
            negated,
        } => {
            let v = eval(expr, row, opts);
            let lo = eval(lo, row, opts);
            let hi = eval(hi, row, opts);
            match (compare(&v, &lo), compare(&v, &hi)) {
                (Some(a), Some(b)) => {
                    Value::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated)
                }
                _ => Value::Null,
            }
        }
        Bound::Call(f, args) => {
            let vals: Vec<Value> = args.iter().map(|a| eval(a, row, opts)).collect();
            call(*f, &vals, opts)
        }
    }
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    match op {
        BinOp::Eq => values_equal(a, b).map(Value::Bool).unwrap_or(Value::Null),
        BinOp::Ne => values_equal(a, b)
            .map(|e| Value::Bool(!e))
            .unwrap_or(Value::Null),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(a, b) {
            None => Value::Null,
            Some(o) => Value::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        },
        BinOp::EqCi | BinOp::NeCi => {
            if *a == Value::Null || *b == Value::Null {
                return Value::Null;
            }
            let eq = a.to_text().to_lowercase() == b.to_text().to_lowercase();
            Value::Bool(if op == BinOp::EqCi { eq } else { !eq })
        }
        BinOp::Str(sop, neg, cs) => {
            if *a == Value::Null {
                return Value::Bool(neg);
            }
            let (hay, needle) = (a.to_text(), b.to_text());
            let (h, n) = if cs {
                (hay.clone(), needle.clone())
            } else {
                (hay.to_lowercase(), needle.to_lowercase())
            };
            let hit = match sop {
                StrOp::Contains => h.contains(&n),
                StrOp::StartsWith => h.starts_with(&n),
                StrOp::EndsWith => h.ends_with(&n),
                StrOp::Has => has_term(&hay, &needle, cs),
                StrOp::HasPrefix => h
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|t| t.starts_with(&n)),
            };
            Value::Bool(hit != neg)
        }
        BinOp::Add | BinOp::Sub => {
            let sub = op == BinOp::Sub;
            match (a, b) {
                (Value::DateTime(t), Value::TimeSpan(d)) => shifted(*t, *d, sub),
                (Value::TimeSpan(d), Value::DateTime(t)) if !sub => shifted(*t, *d, false),
                (Value::DateTime(x), Value::DateTime(y)) if sub => Value::TimeSpan(*x - *y),
                (Value::TimeSpan(x), Value::TimeSpan(y)) => {
                    let d = if sub {
                        x.checked_sub(*y)
                    } else {
                        x.checked_add(*y)
                    };
                    d.map_or(Value::Null, Value::TimeSpan)
                }
                (Value::Long(x), Value::Long(y)) => Value::Long(if sub {
                    x.wrapping_sub(*y)
                } else {
                    x.wrapping_add(*y)
                }),
                (x, y) => match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => Value::Real(if sub { x - y } else { x + y }),
                    _ => Value::Null,
                },
            }
        }
        BinOp::Mul | BinOp::Div | BinOp::Mod => match (a, b) {
            (Value::TimeSpan(d), n) if n.as_f64().is_some() => {
                let n = n.as_f64().unwrap_or(1.0);
                let secs = match op {
                    BinOp::Mul => d.as_seconds_f64() * n,
                    BinOp::Div if n != 0.0 => d.as_seconds_f64() / n,
                    _ => return Value::Null,
                };
                Duration::checked_seconds_f64(secs).map_or(Value::Null, Value::TimeSpan)
            }
            (Value::TimeSpan(x), Value::TimeSpan(y)) if op == BinOp::Div && !y.is_zero() => {
                Value::Real(x.as_seconds_f64() / y.as_seconds_f64())
            }
            // `checked_`: null for a zero divisor and for `i64::MIN / -1`, which overflows.
            (Value::Long(x), Value::Long(y)) => match op {
                BinOp::Mul => Value::Long(x.wrapping_mul(*y)),
                BinOp::Div => x.checked_div(*y).map_or(Value::Null, Value::Long),
                _ => x.checked_rem(*y).map_or(Value::Null, Value::Long),
            },
            (x, y) => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => match op {
                    BinOp::Mul => Value::Real(x * y),
                    BinOp::Div if y != 0.0 => Value::Real(x / y),
                    BinOp::Mod if y != 0.0 => Value::Real(x % y),
                    _ => Value::Null,
                },
                _ => Value::Null,
            },
        },
        BinOp::And | BinOp::Or => Value::Null,
    }
}

/// `t` moved by `d` (back in time when `back`); null past the years a datetime holds, as Kusto
/// answers an out-of-range datetime.
fn shifted(t: OffsetDateTime, d: Duration, back: bool) -> Value {
    let moved = if back {
        t.checked_sub(d)
    } else {
        t.checked_add(d)
    };
    moved.map_or(Value::Null, Value::DateTime)
}

fn call(f: Func, v: &[Value], opts: &ExecOptions) -> Value {
    let arg = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
    match f {
        Func::Now => match arg(0) {
            Value::TimeSpan(d) => shifted(opts.now, d, false),
            _ => Value::DateTime(opts.now),
        },
        Func::Ago => match arg(0) {
            Value::TimeSpan(d) => shifted(opts.now, d, true),
            _ => Value::Null,
        },
        Func::Bin => match (arg(0), arg(1)) {
            (Value::DateTime(t), Value::TimeSpan(d)) if d.is_positive() => {
                let nanos = t.unix_timestamp_nanos();
                let step = d.whole_nanoseconds();
                let floored = nanos - nanos.rem_euclid(step);
                OffsetDateTime::from_unix_timestamp_nanos(floored)
                    .map(Value::DateTime)
                    .unwrap_or(Value::Null)
            }
            (Value::TimeSpan(x), Value::TimeSpan(d)) if d.is_positive() => {
                let step = d.whole_nanoseconds();
                let n = x.whole_nanoseconds();
                // Rounding down may step below the shortest timespan there is.
                let floored = n - n.rem_euclid(step);
                if floored < Duration::MIN.whole_nanoseconds() {
                    Value::Null
                } else {
                    Value::TimeSpan(Duration::nanoseconds_i128(floored))
                }
            }
            (Value::Long(x), Value::Long(s)) if s > 0 => x
                .checked_sub(x.rem_euclid(s))
                .map_or(Value::Null, Value::Long),
            (x, s) => match (x.as_f64(), s.as_f64()) {
                (Some(x), Some(s)) if s > 0.0 => Value::Real((x / s).floor() * s),
                _ => Value::Null,
            },
        },
        Func::ToLower => match arg(0) {
            Value::Null => Value::Null,
            x => Value::String(x.to_text().to_lowercase()),
        },
        Func::ToUpper => match arg(0) {
            Value::Null => Value::Null,
            x => Value::String(x.to_text().to_uppercase()),
        },
        Func::StrLen => match arg(0) {
            Value::Null => Value::Null,
            x => Value::Long(x.to_text().chars().count() as i64),
        },
        Func::StrCat => Value::String(v.iter().map(Value::to_text).collect()),
        Func::Substring => {
            let s: Vec<char> = arg(0).to_text().chars().collect();
            let start = match arg(1) {
                Value::Long(n) => n.max(0) as usize,
                _ => return Value::Null,
            };
            let len = match arg(2) {
                Value::Long(n) => n.max(0) as usize,
                Value::Null => s.len(),
                _ => return Value::Null,
            };
            Value::String(s.iter().skip(start).take(len).collect())
        }
        Func::ToString => match arg(0) {
            Value::Null => Value::String(String::new()),
            x => Value::String(x.to_text()),
        },
        Func::ToLong => match arg(0) {
            Value::Long(n) => Value::Long(n),
            Value::Real(f) => Value::Long(f as i64),
            Value::Bool(b) => Value::Long(i64::from(b)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::Long)
                .or_else(|_| s.trim().parse::<f64>().map(|f| Value::Long(f as i64)))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Func::ToReal => match arg(0) {
            Value::Long(n) => Value::Real(n as f64),
            Value::Real(f) => Value::Real(f),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(Value::Real)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Func::ToBool => match arg(0) {
            Value::Bool(b) => Value::Bool(b),
            Value::Long(n) => Value::Bool(n != 0),
            Value::String(s) => match s.to_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Func::IsEmpty => Value::Bool(arg(0).is_empty_like()),
        Func::IsNotEmpty => Value::Bool(!arg(0).is_empty_like()),
        Func::IsNull => Value::Bool(arg(0) == Value::Null),
        Func::IsNotNull => Value::Bool(arg(0) != Value::Null),
        Func::Not => match arg(0) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Func::Iff => {
            if arg(0) == Value::Bool(true) {
                arg(1)
            } else {
                arg(2)
            }
        }
        Func::StartOfDay => match arg(0) {
            Value::DateTime(t) => Value::DateTime(t.replace_time(time::Time::MIDNIGHT)),
            _ => Value::Null,
        },
    }
}

// ---------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------

/// Default output column name of an expression: the column for a reference, the first
/// column argument of `bin()` and friends, otherwise `Column1`, `Column2`, ...
fn default_name(e: &Expr, counter: &mut usize) -> String {
    match e {
        Expr::Col { name, .. } => name.clone(),
        Expr::Call { name, args, .. }
            if [
                "bin",
                "floor",
                "tolower",
                "toupper",
                "tostring",
                "startofday",
            ]
            .contains(&name.as_str()) =>
        {
            match args.first() {
                Some(Expr::Col { name, .. }) => name.clone(),
                _ => {
                    *counter += 1;
                    format!("Column{counter}")
                }
            }
        }
        _ => {
            *counter += 1;
            format!("Column{counter}")
        }
    }
}

fn agg_default_name(func: &str, args: &[Expr]) -> String {
    let f = match func {
        "take_any" => "any",
        other => other,
    };
    match args.first() {
        Some(Expr::Col { name, .. }) => format!("{f}_{name}"),
        _ => format!("{f}_"),
    }
}

fn run_where(ctx: &Ctx<'_>, t: Table, pred: &Expr, at: usize) -> Result<Table, QueryError> {
    let (b, ty) = bind(ctx, pred, &t.columns)?;
    if !matches!(ty, ColType::Bool | ColType::Dynamic) {
        return Err(ctx.semantic(
            at,
            "the filter expression must be a boolean (did you mean '==' instead of '='?).".into(),
        ));
    }
    let rows = t
        .rows
        .into_iter()
        .filter(|r| eval(&b, r, ctx.opts) == Value::Bool(true))
        .collect();
    Ok(Table { rows, ..t })
}

fn const_count(ctx: &Ctx<'_>, e: &Expr, at: usize) -> Result<usize, QueryError> {
    let (b, _) = bind(ctx, e, &[])?;
    match eval(&b, &[], ctx.opts) {
        Value::Long(n) if n >= 0 => Ok(n as usize),
        _ => Err(ctx.semantic(at, "expected a non-negative integer constant.".into())),
    }
}

fn run_project(
    ctx: &Ctx<'_>,
    t: Table,
    items: &[NamedExpr],
    extend: bool,
) -> Result<Table, QueryError> {
    let mut counter = 0;
    let mut bound = Vec::new();
    for item in items {
        let name = item
            .name
            .clone()
            .unwrap_or_else(|| default_name(&item.expr, &mut counter));
        let (b, ty) = bind(ctx, &item.expr, &t.columns)?;
        bound.push((name, b, ty));
    }
    let mut columns = if extend {
        t.columns.clone()
    } else {
        Vec::new()
    };
    let mut targets = Vec::new();
    for (name, _, ty) in &bound {
        match columns.iter().position(|c| &c.name == name) {
            Some(i) if extend => {
                columns[i].ty = *ty;
                targets.push(i);
            }
            Some(_) => return Err(ctx.semantic(0, format!("duplicate column name '{name}'."))),
            None => {
                columns.push(Column::new(name.clone(), *ty));
                targets.push(columns.len() - 1);
            }
        }
    }
    let rows = t
        .rows
        .into_iter()
        .map(|row| {
            let values: Vec<Value> = bound
                .iter()
                .map(|(_, b, _)| eval(b, &row, ctx.opts))
                .collect();
            let mut out = if extend { row } else { Vec::new() };
            out.resize(columns.len(), Value::Null);
            for (target, v) in targets.iter().zip(values) {
                out[*target] = v;
            }
            out
        })
        .collect();
    Ok(Table {
        name: t.name,
        columns,
        rows,
    })
}

struct AggSpec {
    name: String,
    func: AggFunc,
    arg: Option<Bound>,
    ty: ColType,
}

#[derive(Clone)]
enum AggState {
    Count(i64),
    Distinct(HashSet<String>),
    Best(Option<Value>),
    Sum(Option<Value>),
    Avg(f64, i64),
    Set(Vec<Value>, HashSet<String>),
}

fn run_summarize(
    ctx: &Ctx<'_>,
    t: Table,
    aggs: &[NamedExpr],
    by: &[NamedExpr],
) -> Result<Table, QueryError> {
    let mut counter = 0;
    let mut keys = Vec::new();
    for k in by {
        let name = k
            .name
            .clone()
            .unwrap_or_else(|| default_name(&k.expr, &mut counter));
        let (b, ty) = bind(ctx, &k.expr, &t.columns)?;
        keys.push((name, b, ty));
    }
    let mut specs = Vec::new();
    for a in aggs {
        let Expr::Call { name, args, at } = &a.expr else {
            return Err(ctx.semantic(0, "expected an aggregation function such as count(), dcount(col), min(col), max(col), sum(col), avg(col).".into()));
        };
        let Some(func) = agg_func(name) else {
            return Err(ctx.semantic(*at, format!("'{name}' is not a supported aggregation function (count, countif, dcount, min, max, sum, avg, any, take_any, make_set, make_list).")));
        };
        let needs_arg = !matches!(func, AggFunc::Count);
        if needs_arg && args.len() != 1 {
            return Err(ctx.semantic(*at, format!("'{name}' expects exactly one argument.")));
        }
        let (arg, arg_ty) = match args.first() {
            Some(e) if needs_arg => {
                let (b, ty) = bind(ctx, e, &t.columns)?;
                (Some(b), ty)
            }
            _ => (None, ColType::Long),
        };
        let ty = match func {
            AggFunc::Count | AggFunc::CountIf | AggFunc::DCount => ColType::Long,
            AggFunc::Avg => ColType::Real,
            AggFunc::Sum => {
                if arg_ty == ColType::Real {
                    ColType::Real
                } else if arg_ty == ColType::TimeSpan {
                    ColType::TimeSpan
                } else {
                    ColType::Long
                }
            }
            AggFunc::Min | AggFunc::Max | AggFunc::Any => arg_ty,
            AggFunc::MakeSet | AggFunc::MakeList => ColType::Dynamic,
        };
        let default = if func == AggFunc::Count {
            "count_".to_string()
        } else {
            agg_default_name(name, args)
        };
        specs.push(AggSpec {
            name: a.name.clone().unwrap_or(default),
            func,
            arg,
            ty,
        });
    }
    let init: Vec<AggState> = specs
        .iter()
        .map(|s| match s.func {
            AggFunc::Count | AggFunc::CountIf => AggState::Count(0),
            AggFunc::DCount => AggState::Distinct(HashSet::new()),
            AggFunc::Min | AggFunc::Max | AggFunc::Any => AggState::Best(None),
            AggFunc::Sum => AggState::Sum(None),
            AggFunc::Avg => AggState::Avg(0.0, 0),
            AggFunc::MakeSet | AggFunc::MakeList => AggState::Set(Vec::new(), HashSet::new()),
        })
        .collect();
    let mut order: Vec<Vec<Value>> = Vec::new();
    let mut groups: HashMap<Vec<String>, (usize, Vec<AggState>)> = HashMap::new();
    for row in &t.rows {
        let key_vals: Vec<Value> = keys
            .iter()
            .map(|(_, b, _)| eval(b, row, ctx.opts))
            .collect();
        let key: Vec<String> = key_vals.iter().map(Value::key).collect();
        let entry = groups.entry(key).or_insert_with(|| {
            order.push(key_vals.clone());
            (order.len() - 1, init.clone())
        });
        for (spec, st) in specs.iter().zip(entry.1.iter_mut()) {
            let v = spec.arg.as_ref().map(|b| eval(b, row, ctx.opts));
            match (spec.func, st) {
                (AggFunc::Count, AggState::Count(n)) => *n += 1,
                (AggFunc::CountIf, AggState::Count(n)) if v == Some(Value::Bool(true)) => {
                    *n += 1;
                }
                (AggFunc::DCount, AggState::Distinct(set)) => {
                    if let Some(v) = v.filter(|v| *v != Value::Null) {
                        set.insert(v.key());
                    }
                }
                (f @ (AggFunc::Min | AggFunc::Max | AggFunc::Any), AggState::Best(best)) => {
                    if let Some(v) = v.filter(|v| *v != Value::Null) {
                        let replace = match best {
                            None => true,
                            Some(b) => match f {
                                AggFunc::Min => compare(&v, b) == Some(Ordering::Less),
                                AggFunc::Max => compare(&v, b) == Some(Ordering::Greater),
                                _ => false,
                            },
                        };
                        if replace {
                            *best = Some(v);
                        }
                    }
                }
                (AggFunc::Sum, AggState::Sum(acc)) => {
                    if let Some(v) = v.filter(|v| *v != Value::Null) {
                        *acc = Some(match acc.take() {
                            None => v,
                            Some(a) => binary(BinOp::Add, &a, &v),
                        });
                    }
                }
                (AggFunc::Avg, AggState::Avg(sum, n)) => {
                    if let Some(f) = v.as_ref().and_then(Value::as_f64) {
                        *sum += f;
                        *n += 1;
                    }
                }
                (f @ (AggFunc::MakeSet | AggFunc::MakeList), AggState::Set(items, seen)) => {
                    if let Some(v) = v.filter(|v| *v != Value::Null)
                        && (f == AggFunc::MakeList || seen.insert(v.key()))
                    {
                        items.push(v);
                    }
                }
                _ => {}
            }
        }
    }
    // Without `by`, summarize always yields one row (count() of nothing is 0).
    if keys.is_empty() && groups.is_empty() {
        order.push(Vec::new());
        groups.insert(Vec::new(), (0, init.clone()));
    }
    let mut columns: Vec<Column> = keys
        .iter()
        .map(|(n, _, ty)| Column::new(n.clone(), *ty))
        .collect();
    columns.extend(specs.iter().map(|s| Column::new(s.name.clone(), s.ty)));
    let mut indexed: Vec<(usize, Vec<AggState>)> = groups.into_values().collect();
    indexed.sort_by_key(|(i, _)| *i);
    let rows = indexed
        .into_iter()
        .map(|(i, states)| {
            let mut row = order[i].clone();
            for st in states {
                row.push(match st {
                    AggState::Count(n) => Value::Long(n),
                    AggState::Distinct(s) => Value::Long(s.len() as i64),
                    AggState::Best(b) => b.unwrap_or(Value::Null),
                    AggState::Sum(s) => s.unwrap_or(Value::Long(0)),
                    AggState::Avg(sum, n) => {
                        if n == 0 {
                            Value::Null
                        } else {
                            Value::Real(sum / n as f64)
                        }
                    }
                    AggState::Set(items, _) => Value::Dynamic(Json::Array(
                        items.iter().map(Value::to_graph_json).collect(),
                    )),
                });
            }
            row
        })
        .collect();
    Ok(Table {
        name: t.name,
        columns,
        rows,
    })
}

fn sort_rows(ctx: &Ctx<'_>, t: &mut Table, keys: &[SortKey]) -> Result<(), QueryError> {
    let mut bound = Vec::new();
    for k in keys {
        let (b, _) = bind(ctx, &k.expr, &t.columns)?;
        // Kusto puts nulls last when descending and first when ascending, unless told.
        let nulls_first = k.nulls_first.unwrap_or(!k.desc);
        bound.push((b, k.desc, nulls_first));
    }
    let opts = ctx.opts;
    let mut keyed: Vec<(Vec<Value>, Vec<Value>)> = std::mem::take(&mut t.rows)
        .into_iter()
        .map(|r| (bound.iter().map(|(b, _, _)| eval(b, &r, opts)).collect(), r))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), (_, desc, nulls_first)) in a.iter().zip(b.iter()).zip(bound.iter()) {
            let o = match (x, y) {
                (Value::Null, Value::Null) => Ordering::Equal,
                (Value::Null, _) => {
                    if *nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (_, Value::Null) => {
                    if *nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                _ => {
                    let o = sort_order(x, y);
                    if *desc { o.reverse() } else { o }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    t.rows = keyed.into_iter().map(|(_, r)| r).collect();
    Ok(())
}

fn run_distinct(
    ctx: &Ctx<'_>,
    t: Table,
    cols: &Option<Vec<NamedExpr>>,
) -> Result<Table, QueryError> {
    let t = match cols {
        Some(items) => run_project(ctx, t, items, false)?,
        None => t,
    };
    let mut seen = HashSet::new();
    let rows = t
        .rows
        .into_iter()
        .filter(|r| seen.insert(r.iter().map(Value::key).collect::<Vec<_>>()))
        .collect();
    Ok(Table { rows, ..t })
}

fn load_source(
    src: &str,
    db: &Database,
    source: &Source,
    opts: &ExecOptions,
) -> Result<Table, QueryError> {
    let window = |t: &Table| -> Table {
        let Some((start, end)) = opts.window else {
            return t.clone();
        };
        let Some(ci) = opts.time_columns.iter().find_map(|c| t.column_index(c)) else {
            return t.clone();
        };
        let rows = t
            .rows
            .iter()
            .filter(|r| match &r[ci] {
                Value::DateTime(ts) => *ts >= start && *ts <= end,
                _ => false,
            })
            .cloned()
            .collect();
        Table {
            name: t.name.clone(),
            columns: t.columns.clone(),
            rows,
        }
    };
    let unknown = |name: &str, at: usize| {
        let (line, pos) = line_pos(src, at);
        let known: Vec<&str> = db.tables.keys().map(String::as_str).collect();
        QueryError {
            kind: QueryErrorKind::Semantic,
            message: format!(
                "Failed to resolve table or column expression named '{name}'. Tables available: {}.",
                known.join(", ")
            ),
            line,
            pos,
            token: Some(name.to_string()),
        }
    };
    match source {
        Source::Table { name, at } => db.get(name).map(window).ok_or_else(|| unknown(name, *at)),
        Source::Union {
            with_source,
            tables,
        } => {
            let mut picked: Vec<&Table> = Vec::new();
            for (pattern, at) in tables {
                let matches: Vec<&Table> = if pattern == "*" {
                    db.tables.values().collect()
                } else if let Some(prefix) = pattern.strip_suffix('*') {
                    db.tables
                        .values()
                        .filter(|t| t.name.starts_with(prefix))
                        .collect()
                } else {
                    vec![db.get(pattern).ok_or_else(|| unknown(pattern, *at))?]
                };
                for m in matches {
                    if !picked.iter().any(|p| p.name == m.name) {
                        picked.push(m);
                    }
                }
            }
            // Outer union: the union of the columns, in order of first appearance.
            let mut columns: Vec<Column> = Vec::new();
            if let Some(ws) = with_source {
                columns.push(Column::new(ws.clone(), ColType::String));
            }
            for t in &picked {
                for c in &t.columns {
                    if !columns.iter().any(|x| x.name == c.name) {
                        columns.push(c.clone());
                    }
                }
            }
            let mut out = Table::new("union", columns);
            for t in picked {
                let t = window(t);
                let map: Vec<Option<usize>> = t
                    .columns
                    .iter()
                    .map(|c| out.column_index(&c.name))
                    .collect();
                for r in t.rows {
                    let mut row = vec![Value::Null; out.columns.len()];
                    if with_source.is_some() {
                        row[0] = Value::String(t.name.clone());
                    }
                    for (v, target) in r.into_iter().zip(map.iter()) {
                        if let Some(i) = target {
                            row[*i] = v;
                        }
                    }
                    out.rows.push(row);
                }
            }
            Ok(out)
        }
    }
}

/// Parses and runs `query` against `db`.
pub fn execute(db: &Database, query: &str, opts: &ExecOptions) -> Result<Table, QueryError> {
    let q = parse(query)?;
    let mut t = load_source(query, db, &q.source, opts)?;
    for (op, at, name) in &q.ops {
        let ctx = Ctx {
            src: query,
            op: name,
            opts,
        };
        t = match op {
            Op::Where(e) => run_where(&ctx, t, e, *at)?,
            Op::Take(e) => {
                let n = const_count(&ctx, e, *at)?;
                let mut t = t;
                t.rows.truncate(n);
                t
            }
            Op::Project(items) => run_project(&ctx, t, items, false)?,
            Op::Extend(items) => run_project(&ctx, t, items, true)?,
            Op::ProjectAway(cols) => {
                let mut idx = Vec::new();
                for (c, cat) in cols {
                    idx.push(resolve_col(&ctx, &t.columns, c, *cat)?);
                }
                let keep: Vec<usize> = (0..t.columns.len()).filter(|i| !idx.contains(i)).collect();
                Table {
                    name: t.name,
                    columns: keep.iter().map(|i| t.columns[*i].clone()).collect(),
                    rows: t
                        .rows
                        .into_iter()
                        .map(|r| keep.iter().map(|i| r[*i].clone()).collect())
                        .collect(),
                }
            }
            Op::ProjectRename(pairs) => {
                let mut t = t;
                for (new, old, cat) in pairs {
                    let i = resolve_col(&ctx, &t.columns, old, *cat)?;
                    t.columns[i].name = new.clone();
                }
                t
            }
            Op::Summarize { aggs, by } => run_summarize(&ctx, t, aggs, by)?,
            Op::Sort(keys) => {
                let mut t = t;
                sort_rows(&ctx, &mut t, keys)?;
                t
            }
            Op::Top { n, key } => {
                let n = const_count(&ctx, n, *at)?;
                let mut t = t;
                sort_rows(&ctx, &mut t, std::slice::from_ref(key))?;
                t.rows.truncate(n);
                t
            }
            Op::Distinct(cols) => run_distinct(&ctx, t, cols)?,
            Op::Count => Table {
                name: t.name,
                columns: vec![Column::new("Count", ColType::Long)],
                rows: vec![vec![Value::Long(t.rows.len() as i64)]],
            },
        };
    }
    t.rows.truncate(opts.max_rows);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn now() -> OffsetDateTime {
        parse_time("2024-05-10T12:00:00Z").unwrap()
    }

    fn db() -> Database {
        let mut t = Table::new(
            "DeviceProcessEvents",
            vec![
                Column::new("Timestamp", ColType::DateTime),
                Column::new("DeviceName", ColType::String),
                Column::new("FileName", ColType::String),
                Column::new("ProcessCommandLine", ColType::String),
                Column::new("Size", ColType::Long),
            ],
        );
        let rows = [
            (
                "2024-05-10T11:00:00Z",
                "ws-1.contoso.local",
                "powershell.exe",
                "powershell -enc SQBFAFgA",
                10,
            ),
            (
                "2024-05-10T10:30:00Z",
                "ws-1.contoso.local",
                "cmd.exe",
                "cmd /c whoami",
                20,
            ),
            (
                "2024-05-09T09:00:00Z",
                "ws-2.contoso.local",
                "powershell.exe",
                "powershell Get-Process",
                30,
            ),
            (
                "2024-05-01T09:00:00Z",
                "srv-1.contoso.local",
                "certutil.exe",
                "certutil -urlcache -f http://x",
                40,
            ),
        ];
        for (ts, d, f, c, s) in rows {
            t.push_named(vec![
                ("Timestamp", Value::DateTime(parse_time(ts).unwrap())),
                ("DeviceName", Value::str(d)),
                ("FileName", Value::str(f)),
                ("ProcessCommandLine", Value::str(c)),
                ("Size", Value::Long(s)),
            ]);
        }
        let mut logon = Table::new(
            "DeviceLogonEvents",
            vec![
                Column::new("Timestamp", ColType::DateTime),
                Column::new("DeviceName", ColType::String),
                Column::new("AccountName", ColType::String),
            ],
        );
        logon.push_named(vec![
            ("Timestamp", Value::DateTime(now())),
            ("DeviceName", Value::str("ws-1.contoso.local")),
            ("AccountName", Value::str("alice")),
        ]);
        let mut db = Database::default();
        db.insert(t);
        db.insert(logon);
        db
    }

    fn run(q: &str) -> Result<Table, QueryError> {
        execute(&db(), q, &ExecOptions::at(now()))
    }

    #[test]
    fn where_take_project() {
        let t = run("DeviceProcessEvents | where FileName == 'powershell.exe' and Timestamp > ago(1d) | project DeviceName, Cmd = ProcessCommandLine | take 5").unwrap();
        assert_eq!(
            t.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["DeviceName", "Cmd"]
        );
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0][1], Value::str("powershell -enc SQBFAFgA"));
    }

    #[test]
    fn string_operators() {
        assert_eq!(
            run("DeviceProcessEvents | where ProcessCommandLine contains 'ENC'")
                .unwrap()
                .rows
                .len(),
            1
        );
        assert_eq!(
            run("DeviceProcessEvents | where ProcessCommandLine contains_cs 'ENC'")
                .unwrap()
                .rows
                .len(),
            0
        );
        assert_eq!(
            run("DeviceProcessEvents | where ProcessCommandLine has 'whoami'")
                .unwrap()
                .rows
                .len(),
            1
        );
        assert_eq!(
            run("DeviceProcessEvents | where ProcessCommandLine has 'whoam'")
                .unwrap()
                .rows
                .len(),
            0
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName startswith 'power'")
                .unwrap()
                .rows
                .len(),
            2
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName !startswith 'power'")
                .unwrap()
                .rows
                .len(),
            2
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName =~ 'CMD.EXE'")
                .unwrap()
                .rows
                .len(),
            1
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName in ('cmd.exe', 'certutil.exe')")
                .unwrap()
                .rows
                .len(),
            2
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName !in ('cmd.exe', 'certutil.exe')")
                .unwrap()
                .rows
                .len(),
            2
        );
        assert_eq!(
            run("DeviceProcessEvents | where FileName in~ ('CMD.exe')")
                .unwrap()
                .rows
                .len(),
            1
        );
        assert_eq!(
            run("DeviceProcessEvents | where not(FileName == 'cmd.exe') or Size > 100")
                .unwrap()
                .rows
                .len(),
            3
        );
        assert_eq!(
            run("DeviceProcessEvents | where Size between (15 .. 30)")
                .unwrap()
                .rows
                .len(),
            2
        );
    }

    #[test]
    fn datetime_literals_and_arithmetic() {
        let t = run("DeviceProcessEvents | where Timestamp >= datetime(2024-05-09) and Timestamp < now() - 1h").unwrap();
        assert_eq!(t.rows.len(), 2);
        let t = run("DeviceProcessEvents | where Timestamp > ago(30m)").unwrap();
        assert_eq!(t.rows.len(), 0);
        let t = run(
            "DeviceProcessEvents | extend Age = now() - Timestamp | where Age < 2h | project Age",
        )
        .unwrap();
        assert_eq!(t.columns[0].ty, ColType::TimeSpan);
        assert_eq!(t.rows.len(), 2);
    }

    #[test]
    fn summarize_variants() {
        let t = run("DeviceProcessEvents | summarize count() by DeviceName | order by count_ desc")
            .unwrap();
        assert_eq!(t.columns[0].name, "DeviceName");
        assert_eq!(t.columns[1].name, "count_");
        assert_eq!(
            t.rows[0],
            vec![Value::str("ws-1.contoso.local"), Value::Long(2)]
        );
        let t = run("DeviceProcessEvents | summarize Devices = dcount(DeviceName), Total = sum(Size), Avg = avg(Size), Last = max(Timestamp), First = min(Timestamp)").unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0][0], Value::Long(3));
        assert_eq!(t.rows[0][1], Value::Long(100));
        assert_eq!(t.rows[0][2], Value::Real(25.0));
        assert_eq!(
            t.rows[0][3],
            Value::DateTime(parse_time("2024-05-10T11:00:00Z").unwrap())
        );
        let t = run(
            "DeviceProcessEvents | summarize count() by bin(Timestamp, 1d) | sort by Timestamp asc",
        )
        .unwrap();
        assert_eq!(t.columns[0].name, "Timestamp");
        assert_eq!(t.rows.len(), 3);
        assert_eq!(
            t.rows[0][0],
            Value::DateTime(parse_time("2024-05-01T00:00:00Z").unwrap())
        );
        let t = run("DeviceProcessEvents | where Size > 1000 | summarize count()").unwrap();
        assert_eq!(t.rows, vec![vec![Value::Long(0)]]);
        let t = run("DeviceProcessEvents | summarize make_set(FileName) by DeviceName | where DeviceName == 'ws-1.contoso.local'").unwrap();
        assert_eq!(t.columns[1].name, "make_set_FileName");
    }

    #[test]
    fn top_distinct_count_union() {
        let t = run("DeviceProcessEvents | top 2 by Size desc").unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][4], Value::Long(40));
        let t = run("DeviceProcessEvents | top 1 by Size asc").unwrap();
        assert_eq!(t.rows[0][4], Value::Long(10));
        let t = run("DeviceProcessEvents | distinct FileName").unwrap();
        assert_eq!(t.rows.len(), 3);
        let t = run("DeviceProcessEvents | count").unwrap();
        assert_eq!(t.columns[0].name, "Count");
        assert_eq!(t.rows[0][0], Value::Long(4));
        let t = run(
            "union withsource=TableName * | summarize count() by TableName | sort by TableName asc",
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][0], Value::str("DeviceLogonEvents"));
        let t = run("union DeviceProcessEvents, DeviceLogonEvents | where DeviceName == 'ws-1.contoso.local' | count").unwrap();
        assert_eq!(t.rows[0][0], Value::Long(3));
        let t = run("union Device* | count").unwrap();
        assert_eq!(t.rows[0][0], Value::Long(5));
        let t = run("DeviceProcessEvents | project-away ProcessCommandLine, Size | project-rename Host = DeviceName").unwrap();
        assert_eq!(
            t.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["Timestamp", "Host", "FileName"]
        );
    }

    #[test]
    fn time_window_filters_sources() {
        let mut opts = ExecOptions::at(now());
        opts.window = Some((now() - Duration::days(1), now()));
        let t = execute(&db(), "DeviceProcessEvents | count", &opts).unwrap();
        assert_eq!(t.rows[0][0], Value::Long(2));
    }

    #[test]
    fn errors_are_specific() {
        let e = run("DeviceProcessEvents | join (DeviceLogonEvents) on DeviceName").unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::Syntax);
        assert!(e.message.contains("'join'"), "{}", e.message);
        assert_eq!((e.line, e.pos), (1, 22));
        let e = run("DeviceProcessEvents\n| mv-expand Foo").unwrap_err();
        assert!(e.message.contains("mv-expand"));
        assert_eq!((e.line, e.pos), (2, 2));
        let e = run("DeviceProcessEvents | where Foo == 1").unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::Semantic);
        assert!(e.message.contains("'Foo'"));
        let e = run("DeviceProcessEvents | where devicename == 'x'").unwrap_err();
        assert!(e.message.contains("DeviceName"), "{}", e.message);
        let e = run("NoSuchTable | take 1").unwrap_err();
        assert!(e.message.contains("NoSuchTable"));
        let e = run(".show tables").unwrap_err();
        assert!(e.message.contains("control commands"));
        let e = run("DeviceProcessEvents | where FileName = 'x'").unwrap_err();
        assert!(e.message.contains("=="));
        assert!(run("DeviceProcessEvents | where FileName == 'x").is_err());
        assert!(run("DeviceProcessEvents | summarize foo(Size)").is_err());
        assert!(run("DeviceProcessEvents | take 1 | ").is_err());
        assert!(run("let T = DeviceProcessEvents | take 1; T").is_err());
        assert!(run("").is_err());
    }

    #[test]
    fn scalar_let_statements() {
        let t = run("let lookback = 1d;\nlet exe = 'powershell.exe';\nDeviceProcessEvents | where Timestamp > ago(lookback) and FileName == exe").unwrap();
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn timespan_formatting() {
        assert_eq!(fmt_timespan(Duration::hours(1)), "01:00:00");
        assert_eq!(fmt_timespan(Duration::hours(26)), "1.02:00:00");
        assert_eq!(parse_timespan_text("1.02:00:00"), Some(Duration::hours(26)));
        assert_eq!(parse_timespan_text("30m"), Some(Duration::minutes(30)));
    }

    #[test]
    fn comments_and_verbatim_strings() {
        let t = run("// find powershell\nDeviceProcessEvents // all rows\n| where FileName == @'powershell.exe'").unwrap();
        assert_eq!(t.rows.len(), 2);
    }

    #[test]
    fn multibyte_first_character_is_a_syntax_error() {
        // Reported: a query starting with a character of three or more bytes (`€`, `日`,
        // `😀`) panicked in the lexer, which sliced the text two bytes at a time; so did any
        // operator character followed by a multi-byte one (`=é`).
        for q in [
            "€",
            "é",
            "😀 | take 1",
            "日本 | take 1",
            "€DeviceProcessEvents",
        ] {
            let e = run(q).unwrap_err();
            assert_eq!(e.kind, QueryErrorKind::Syntax, "{q}: {e}");
            assert_eq!((e.line, e.pos), (1, 0), "{q}");
        }
        let e = run("€").unwrap_err();
        assert!(e.message.contains("'€'"), "{e}");
        // The same cut after an operator character.
        for q in [
            "DeviceProcessEvents | where FileName =é 'x'",
            "DeviceProcessEvents | where FileName ==€",
            "DeviceProcessEvents |€",
            "DeviceProcessEvents | where Size >😀",
        ] {
            assert_eq!(run(q).unwrap_err().kind, QueryErrorKind::Syntax, "{q}");
        }
        // Inside string literals multi-byte characters stay valid.
        let t = run("DeviceProcessEvents | where FileName != '€日本😀' | count").unwrap();
        assert_eq!(t.rows[0][0], Value::Long(4));
    }

    #[test]
    fn out_of_range_timespan_literals_are_syntax_errors() {
        for q in [
            "DeviceProcessEvents | where Timestamp > ago(99999999999999999999d)",
            "DeviceProcessEvents | where Timestamp > ago(1e400d)",
            "DeviceProcessEvents | where Timestamp > ago(timespan(999999999999999.00:00:00))",
            "DeviceProcessEvents | where Timestamp > ago(timespan(0:0:NaN))",
            "DeviceProcessEvents | where Timestamp > ago(timespan(9223372036854775807:00:00))",
        ] {
            assert_eq!(run(q).unwrap_err().kind, QueryErrorKind::Syntax, "{q}");
        }
        assert_eq!(parse_timespan_text("99999999999999999999d"), None);
        assert_eq!(
            parse_timespan_text("1.00:00:01"),
            Some(Duration::seconds(86401))
        );
    }

    #[test]
    fn overflowing_arithmetic_is_null() {
        let t = run("let min = -9223372036854775807 - 1;\nlet long_span = 106751991167300d;\nDeviceProcessEvents | take 1 | project a = ago(long_span), b = now(long_span), c = min / -1, d = min % -1, e = -min, f = long_span * 1e10, g = long_span + long_span, h = bin(min, 3), i = datetime(2024-01-01) + long_span, j = long_span / 1e-300, k = 7 / 0").unwrap();
        let row = &t.rows[0];
        for (column, value) in t.columns.iter().zip(row) {
            let expected = if column.name == "e" {
                // Negating the smallest long wraps, as `+`, `-` and `*` on longs do.
                Value::Long(i64::MIN)
            } else {
                Value::Null
            };
            assert_eq!(*value, expected, "{}", column.name);
        }
    }

    /// A table of values at the edges of their types, enough rows for `sort_by` to check
    /// its comparator, plus mixed and NaN values.
    fn edge_db() -> Database {
        let mut db = db();
        let mut t = Table::new(
            "Edges",
            vec![
                Column::new("Timestamp", ColType::DateTime),
                Column::new("N", ColType::Long),
                Column::new("R", ColType::Real),
                Column::new("S", ColType::String),
                Column::new("D", ColType::TimeSpan),
                Column::new("J", ColType::Dynamic),
            ],
        );
        let times = [
            OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX),
            now(),
        ];
        let longs = [i64::MIN, i64::MAX, 0, -1, 1, 3];
        let reals = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.5, 1e308];
        let texts = ["", "€", "日本", "2024-05-01", "a b", "😀x"];
        let spans = [
            Duration::MIN,
            Duration::MAX,
            Duration::ZERO,
            Duration::days(1),
        ];
        for i in 0..48 {
            t.push_named(vec![
                ("Timestamp", Value::DateTime(times[i % times.len()])),
                ("N", Value::Long(longs[i % longs.len()])),
                ("R", Value::Real(reals[i % reals.len()] * i as f64)),
                ("S", Value::str(texts[i % texts.len()])),
                ("D", Value::TimeSpan(spans[i % spans.len()])),
                (
                    "J",
                    Value::Dynamic(serde_json::json!([i, texts[i % texts.len()]])),
                ),
            ]);
        }
        db.insert(t);
        db
    }

    #[test]
    fn sorting_nan_and_mixed_values_is_a_total_order() {
        // `sort_by` may panic on a comparator that is not a total order; NaN and mixed types
        // (an `iff` of a string and a number) made `compare` answer "equal" inconsistently.
        let db = edge_db();
        let opts = ExecOptions::at(now());
        for q in [
            "Edges | order by R asc",
            "Edges | order by R desc",
            "Edges | extend M = iff(N > 0, tostring(R), R) | order by M",
            "Edges | extend M = iff(N > 0, S, N) | order by M asc, R desc",
            "Edges | extend M = iff(N > 0, Timestamp, S) | top 100 by M",
            "Edges | order by J",
        ] {
            let t = execute(&db, q, &opts).unwrap();
            assert_eq!(t.rows.len(), 48, "{q}");
        }
        let t = execute(&db, "Edges | project R | order by R asc", &opts).unwrap();
        let reals: Vec<f64> = t
            .rows
            .iter()
            .filter_map(|r| match r[0] {
                Value::Real(f) => Some(f),
                _ => None,
            })
            .collect();
        let numbers = reals.iter().take_while(|f| !f.is_nan()).count();
        assert!(reals[..numbers].is_sorted(), "{reals:?}");
        assert!(
            reals[numbers..].iter().all(|f| f.is_nan()),
            "NaN sorts last"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = 100_000;
        for q in [
            format!("DeviceProcessEvents | where {}", "(".repeat(deep)),
            format!("DeviceProcessEvents | extend x = {}1", "-".repeat(deep)),
            format!("DeviceProcessEvents | where {}true", "not(".repeat(deep)),
            format!("DeviceProcessEvents | extend x = 1{}", " + 1".repeat(deep)),
            format!(
                "DeviceProcessEvents | where true{}",
                " or false".repeat(deep)
            ),
            format!(
                "DeviceProcessEvents | extend x = {}'a'",
                "tolower(".repeat(deep)
            ),
        ] {
            let e = run(&q).unwrap_err();
            assert_eq!(e.kind, QueryErrorKind::Syntax);
            assert!(e.message.contains(" deep"), "{}", e.message);
        }
        // Each use of a let name copies its expression: doubling forty times is refused.
        let mut lets = String::from("let a0 = 1;\n");
        for i in 1..=40 {
            lets.push_str(&format!("let a{i} = a{} + a{};\n", i - 1, i - 1));
        }
        let e = run(&format!("{lets}DeviceProcessEvents | extend x = a40")).unwrap_err();
        assert!(e.message.contains("let names"), "{}", e.message);
        // Up to the limits, deep expressions still run, with room to spare: on half of the
        // 2 MiB stack a tokio worker or test thread has.
        let nesting = MAX_NESTING - 1;
        let chain = MAX_DEPTH - 1;
        let queries = [
            format!(
                "DeviceProcessEvents | extend x = {}1{} | where x == 1",
                "(".repeat(nesting),
                ")".repeat(nesting)
            ),
            format!(
                "DeviceProcessEvents | extend x = {}'A'{} | where x == 'a'",
                "tolower(".repeat(nesting),
                ")".repeat(nesting)
            ),
            // An even number of `not`s, so that rows pass.
            format!(
                "DeviceProcessEvents | where {}true{}",
                "not(".repeat(nesting - 1),
                ")".repeat(nesting - 1)
            ),
            format!(
                "DeviceProcessEvents | extend x = 0{} | where x == {chain}",
                " + 1".repeat(chain)
            ),
            format!(
                "DeviceProcessEvents | where {}(Size > 0{}){}",
                "(".repeat(nesting - 1),
                " and true".repeat(chain - nesting),
                ")".repeat(nesting - 1)
            ),
        ];
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                for q in queries {
                    assert_eq!(run(&q).unwrap().rows.len(), 4, "{}", &q[..60]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
        let one_too_many = format!(
            "DeviceProcessEvents | extend x = 0{}",
            " + 1".repeat(MAX_DEPTH)
        );
        assert!(run(&one_too_many).is_err());
        let one_too_deep = format!(
            "DeviceProcessEvents | extend x = {}1",
            "-".repeat(MAX_NESTING)
        );
        assert!(run(&one_too_deep).is_err());
    }

    /// Scalar expressions over the columns of [`edge_db`] and literals at their limits.
    fn expression() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "Timestamp",
                "N",
                "R",
                "S",
                "D",
                "J",
                "DeviceName",
                "Size",
                "Nope",
                "true",
                "false",
                "now()",
                "todouble('nan')",
                "1e308",
                "-0.0",
                "''",
                "'€'",
                "datetime(9999-12-31T23:59:59.9999999Z)",
                "datetime(0000-01-01)",
                "106751991167300d",
                "9223372036854775807",
                "-9223372036854775807",
            ])
            .prop_map(str::to_string),
            any::<i64>().prop_map(|n| n.to_string()),
            "[0-9]{1,22}(\\.[0-9]{1,3})?(d|h|m|s|ms|tick|microseconds)",
            "(datetime|timespan)\\([^)]{0,24}\\)",
            "'[^'\\\\]{0,8}'",
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec![
                        "+",
                        "-",
                        "*",
                        "/",
                        "%",
                        "==",
                        "!=",
                        "<",
                        "<=",
                        ">",
                        ">=",
                        "=~",
                        "!~",
                        "and",
                        "or",
                        "contains",
                        "has",
                        "startswith",
                        "endswith",
                        "!has_cs",
                        "hasprefix",
                    ]),
                    inner.clone(),
                )
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                inner.clone().prop_map(|a| format!("-{a}")),
                (
                    prop::sample::select(vec![
                        "ago",
                        "now",
                        "tolower",
                        "toupper",
                        "strlen",
                        "tostring",
                        "toint",
                        "tolong",
                        "todouble",
                        "tobool",
                        "isempty",
                        "isnotnull",
                        "not",
                        "startofday",
                    ]),
                    inner.clone(),
                )
                    .prop_map(|(f, a)| format!("{f}({a})")),
                (
                    prop::sample::select(vec!["bin", "floor", "strcat", "substring", "iff"]),
                    prop::collection::vec(inner.clone(), 1..4),
                )
                    .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(a, b, c)| format!("{a} in ({b}, {c})")),
                (inner.clone(), inner.clone(), inner)
                    .prop_map(|(a, b, c)| format!("{a} between ({b} .. {c})")),
            ]
        })
    }

    /// Pipelines of the supported operators over those expressions: mostly valid, often not.
    fn pipeline() -> impl Strategy<Value = String> {
        let column = prop::sample::select(vec!["N", "R", "S", "D", "J", "Timestamp", "Nope"]);
        let count = prop_oneof![any::<i64>().prop_map(|n| n.to_string()), expression(),];
        let op = prop_oneof![
            expression().prop_map(|e| format!("where {e}")),
            (expression(), expression()).prop_map(|(a, b)| format!("extend X = {a}, {b}")),
            (column.clone(), expression()).prop_map(|(c, e)| format!("project {c}, Z = {e}")),
            (
                prop::sample::select(vec![
                    "count()", "sum", "avg", "min", "max", "dcount", "make_set", "countif", "any",
                ]),
                expression(),
                expression(),
            )
                .prop_map(|(agg, a, by)| if agg == "count()" {
                    format!("summarize count() by {by}")
                } else {
                    format!("summarize {agg}({a}) by {by}")
                }),
            (
                expression(),
                prop::sample::select(vec!["asc", "desc", "asc nulls first", ""])
            )
                .prop_map(|(e, dir)| format!("order by {e} {dir}")),
            (count.clone(), expression()).prop_map(|(n, e)| format!("top {n} by {e}")),
            count.prop_map(|n| format!("take {n}")),
            column.clone().prop_map(|c| format!("distinct {c}")),
            column.clone().prop_map(|c| format!("project-away {c}")),
            column.prop_map(|c| format!("project-rename Renamed = {c}")),
            Just("count".to_string()),
        ];
        (
            prop::option::of(expression()),
            prop::sample::select(vec![
                "Edges",
                "DeviceProcessEvents",
                "union *",
                "union withsource=TableName Edges, DeviceLogonEvents",
                "union Dev*",
                "Nope",
            ]),
            prop::collection::vec(op, 0..5),
        )
            .prop_map(|(bound, source, ops)| {
                let mut q = String::new();
                if let Some(value) = bound {
                    q.push_str(&format!("let v = {value};\n"));
                }
                q.push_str(source);
                for op in ops {
                    q.push_str(" | ");
                    q.push_str(&op);
                }
                q
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text at all, multi-byte characters first included, is an answer or an error.
        #[test]
        fn any_text_is_answered_without_panicking(query in prop_oneof![any::<String>(), "\\PC{0,3}[ -~]{0,40}"]) {
            let _ = check_syntax(&query);
            let _ = execute(&edge_db(), &query, &ExecOptions::at(now()));
        }

        #[test]
        fn near_valid_pipelines_never_panic(query in pipeline()) {
            let _ = execute(&edge_db(), &query, &ExecOptions::at(now()));
        }

        /// A valid-looking pipeline with one character put anywhere, multi-byte ones included.
        #[test]
        fn pipelines_with_a_stray_character_never_panic(
            query in pipeline(),
            at in any::<prop::sample::Index>(),
            c in any::<char>(),
        ) {
            let mut query = query;
            let boundaries: Vec<usize> = query.char_indices().map(|(i, _)| i).chain([query.len()]).collect();
            query.insert(boundaries[at.index(boundaries.len())], c);
            let _ = execute(&edge_db(), &query, &ExecOptions::at(now()));
        }

        #[test]
        fn timespan_text_never_panics(
            text in prop_oneof![
                any::<String>(),
                "-?[0-9]{0,22}(\\.[0-9]{0,22})?:[0-9]{0,22}:[0-9.e]{0,22}|[0-9.e+-]{0,24}(d|h|m|s|ms|tick)",
            ],
        ) {
            let _ = parse_timespan_text(&text);
        }
    }
}
