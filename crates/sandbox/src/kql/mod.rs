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
//!
//! A query goes through `lexer` (text to tokens), `parser` (tokens to the syntax tree in
//! `ast`), `binder` (names and functions resolved against each table's columns, with types)
//! and `evaluator` (rows through the operators); [`execute`] drives them. The data model
//! (values, columns, tables, errors) is here.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::Value as Json;
use time::{Duration, OffsetDateTime};

use crate::util::{fmt_time, parse_time};

mod ast;
mod binder;
mod evaluator;
mod lexer;
mod parser;

use ast::Op;
use binder::{Ctx, resolve_col};
use evaluator::{
    const_count, load_source, run_distinct, run_project, run_summarize, run_where, sort_rows,
};
pub use parser::check_syntax;
use parser::parse;

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

    use super::parser::*;
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
