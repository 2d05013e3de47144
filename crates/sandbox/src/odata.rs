//! A small OData `$filter` and `$orderby` implementation evaluated over the JSON form of a
//! resource. Supports `eq ne gt ge lt le`, `and or not`, parentheses, `contains()`,
//! `startswith()`, `endswith()`, string/number/boolean/null/date-time literals, and nested
//! property paths (`properties/status`) as ARM uses them.

use std::cmp::Ordering;

use serde_json::Value;
use time::OffsetDateTime;

use crate::util::parse_time;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    DateTime(OffsetDateTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFunc {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp {
        path: Vec<String>,
        op: CmpOp,
        value: Literal,
    },
    Func {
        func: StrFunc,
        path: Vec<String>,
        value: String,
    },
}

impl StrFunc {
    pub fn name(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::StartsWith => "startswith",
            Self::EndsWith => "endswith",
        }
    }
}

impl Filter {
    /// The string functions the expression uses (an API may document only some of them).
    pub fn functions(&self) -> Vec<StrFunc> {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                let mut all = a.functions();
                all.extend(b.functions());
                all
            }
            Self::Not(inner) => inner.functions(),
            Self::Cmp { .. } => Vec::new(),
            Self::Func { func, .. } => vec![*func],
        }
    }
}

/// A `$filter` problem, phrased for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Str(String),
    Num(f64),
    DateTime(OffsetDateTime),
    Word(String),
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((Tok::LParen, start));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, start));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, start));
                i += 1;
            }
            '\'' => {
                // OData escapes a quote inside a string by doubling it.
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(FilterError(format!(
                                "Unterminated string literal at position {start}."
                            )));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            _ if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric()
                        || matches!(chars[j], '-' | ':' | '.' | '+'))
                {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                if let Ok(n) = text.parse::<f64>() {
                    out.push((Tok::Num(n), start));
                } else if let Some(t) = parse_time(&text) {
                    out.push((Tok::DateTime(t), start));
                } else if uuid::Uuid::parse_str(&text).is_ok() {
                    // Unquoted GUID literal.
                    out.push((Tok::Str(text), start));
                } else {
                    return Err(FilterError(format!(
                        "Syntax error: '{text}' at position {start} is not a valid literal."
                    )));
                }
                i = j;
            }
            _ if c.is_alphabetic() || c == '_' || c == '@' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '/' | '.' | '@'))
                {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                out.push((Tok::Word(text), start));
                i = j;
            }
            _ => {
                return Err(FilterError(format!(
                    "Syntax error: character '{c}' is not valid at position {start}."
                )));
            }
        }
    }
    Ok(out)
}

/// How deep a `$filter` may nest (parentheses, `not`, chains of `and`/`or`). Parsing,
/// matching and dropping a filter recurse once per level, so an unbounded one could overflow
/// the serving thread's stack; Microsoft's OData parser refuses deep filters too, with the
/// message of [`too_deep`].
const MAX_DEPTH: usize = 100;

fn too_deep() -> FilterError {
    FilterError("Recursion depth exceeded allowed limit.".into())
}

/// A filter and its depth (the longest path to a leaf).
type Parsed = (Filter, usize);

/// The depth of a node over children of the given depths, refused past [`MAX_DEPTH`].
fn node(children: &[usize]) -> Result<usize, FilterError> {
    let depth = children.iter().max().copied().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(depth)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    allowed: Option<&'a [&'a str]>,
    input_len: usize,
    /// How many `unary` calls are active: the parser's own recursion depth.
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|(_, o)| *o)
            .unwrap_or(self.input_len)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), FilterError> {
        let at = self.offset();
        match self.next() {
            Some(t) if t == tok => Ok(()),
            _ => Err(FilterError(format!(
                "Syntax error at position {at}: expected {what}."
            ))),
        }
    }

    fn or_expr(&mut self) -> Result<Parsed, FilterError> {
        let (mut left, mut depth) = self.and_expr()?;
        while self.peek_word("or") {
            self.pos += 1;
            let (right, right_depth) = self.and_expr()?;
            depth = node(&[depth, right_depth])?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn and_expr(&mut self) -> Result<Parsed, FilterError> {
        let (mut left, mut depth) = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let (right, right_depth) = self.unary()?;
            depth = node(&[depth, right_depth])?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    /// Parentheses and `not` recurse through here, so this bounds the parser's own recursion.
    fn unary(&mut self) -> Result<Parsed, FilterError> {
        if self.nesting >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.nesting += 1;
        let parsed = self.negated();
        self.nesting -= 1;
        parsed
    }

    fn negated(&mut self) -> Result<Parsed, FilterError> {
        if self.peek_word("not") {
            self.pos += 1;
            let (inner, inner_depth) = self.unary()?;
            return Ok((Filter::Not(Box::new(inner)), node(&[inner_depth])?));
        }
        self.primary()
    }

    fn property(&mut self, name: &str, at: usize) -> Result<Vec<String>, FilterError> {
        if let Some(allowed) = self.allowed {
            let root = name.split('/').next().unwrap_or(name);
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(root)) {
                return Err(FilterError(format!(
                    "Could not find a property named '{name}' (position {at}). Filterable properties: {}.",
                    allowed.join(", ")
                )));
            }
        }
        Ok(name.split('/').map(str::to_string).collect())
    }

    fn primary(&mut self) -> Result<Parsed, FilterError> {
        let at = self.offset();
        match self.next() {
            Some(Tok::LParen) => {
                let parsed = self.or_expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(parsed)
            }
            Some(Tok::Word(w)) => {
                let func = match w.to_ascii_lowercase().as_str() {
                    "contains" => Some(StrFunc::Contains),
                    "startswith" => Some(StrFunc::StartsWith),
                    "endswith" => Some(StrFunc::EndsWith),
                    _ => None,
                };
                if let (Some(func), Some(Tok::LParen)) = (func, self.peek()) {
                    self.pos += 1;
                    let fat = self.offset();
                    let Some(Tok::Word(field)) = self.next() else {
                        return Err(FilterError(format!(
                            "Syntax error at position {fat}: {w}() expects a property name as its first argument."
                        )));
                    };
                    let path = self.property(&field, fat)?;
                    self.expect(Tok::Comma, "','")?;
                    let sat = self.offset();
                    let Some(Tok::Str(value)) = self.next() else {
                        return Err(FilterError(format!(
                            "Syntax error at position {sat}: {w}() expects a string literal as its second argument."
                        )));
                    };
                    self.expect(Tok::RParen, "')'")?;
                    return Ok((Filter::Func { func, path, value }, 1));
                }
                if matches!(self.peek(), Some(Tok::LParen)) {
                    return Err(FilterError(format!(
                        "Unsupported function '{w}' at position {at}. Supported: contains, startswith, endswith."
                    )));
                }
                let path = self.property(&w, at)?;
                let oat = self.offset();
                let op = match self.next() {
                    Some(Tok::Word(o)) => match o.to_ascii_lowercase().as_str() {
                        "eq" => CmpOp::Eq,
                        "ne" => CmpOp::Ne,
                        "gt" => CmpOp::Gt,
                        "ge" => CmpOp::Ge,
                        "lt" => CmpOp::Lt,
                        "le" => CmpOp::Le,
                        other => {
                            return Err(FilterError(format!(
                                "Syntax error at position {oat}: unsupported operator '{other}' (expected eq, ne, gt, ge, lt or le)."
                            )));
                        }
                    },
                    _ => {
                        return Err(FilterError(format!(
                            "Syntax error at position {oat}: expected a comparison operator after '{w}'."
                        )));
                    }
                };
                let lat = self.offset();
                let value = match self.next() {
                    Some(Tok::Str(s)) => Literal::Str(s),
                    Some(Tok::Num(n)) => Literal::Num(n),
                    Some(Tok::DateTime(t)) => Literal::DateTime(t),
                    Some(Tok::Word(x)) if x.eq_ignore_ascii_case("true") => Literal::Bool(true),
                    Some(Tok::Word(x)) if x.eq_ignore_ascii_case("false") => Literal::Bool(false),
                    Some(Tok::Word(x)) if x.eq_ignore_ascii_case("null") => Literal::Null,
                    _ => {
                        return Err(FilterError(format!(
                            "Syntax error at position {lat}: expected a literal value."
                        )));
                    }
                };
                Ok((Filter::Cmp { path, op, value }, 1))
            }
            Some(_) => Err(FilterError(format!(
                "Syntax error at position {at}: expected a property, function or '('."
            ))),
            None => Err(FilterError(format!(
                "Syntax error at position {at}: unexpected end of $filter."
            ))),
        }
    }
}

/// Parses a `$filter`. `allowed` lists the properties the endpoint allows filtering on (root
/// segment, case-insensitive); `None` allows any property.
pub fn parse_filter(input: &str, allowed: Option<&[&str]>) -> Result<Filter, FilterError> {
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(FilterError("The $filter expression is empty.".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        allowed,
        input_len: input.len(),
        nesting: 0,
    };
    let (f, _) = p.or_expr()?;
    if p.pos < p.toks.len() {
        let at = p.offset();
        return Err(FilterError(format!(
            "Syntax error at position {at}: unexpected token after a complete expression."
        )));
    }
    Ok(f)
}

/// Looks a property path up in a JSON object, case-insensitively per segment.
pub fn lookup<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path {
        let map = cur.as_object()?;
        cur = match map.get(seg.as_str()) {
            Some(v) => v,
            None => map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)?,
        };
    }
    Some(cur)
}

fn compare(field: &Value, lit: &Literal) -> Option<Ordering> {
    match (field, lit) {
        (Value::String(s), Literal::DateTime(t)) => parse_time(s).map(|f| f.cmp(t)),
        (Value::String(s), Literal::Str(l)) => {
            // Date-times quoted as strings still compare chronologically.
            if let (Some(a), Some(b)) = (
                parse_time(s).filter(|_| s.len() >= 10),
                parse_time(l).filter(|_| l.len() >= 10),
            ) {
                return Some(a.cmp(&b));
            }
            // The Microsoft services compare strings case-insensitively in $filter.
            Some(s.to_lowercase().cmp(&l.to_lowercase()))
        }
        (Value::String(s), Literal::Num(n)) => s.parse::<f64>().ok().and_then(|f| f.partial_cmp(n)),
        (Value::Number(f), Literal::Num(n)) => f.as_f64().and_then(|f| f.partial_cmp(n)),
        (Value::Number(f), Literal::Str(s)) => {
            let n: f64 = s.parse().ok()?;
            f.as_f64().and_then(|f| f.partial_cmp(&n))
        }
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Bool(b), Literal::Str(s)) => Some(b.to_string().cmp(&s.to_lowercase())),
        _ => None,
    }
}

impl Filter {
    pub fn matches(&self, obj: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(obj) && b.matches(obj),
            Filter::Or(a, b) => a.matches(obj) || b.matches(obj),
            Filter::Not(a) => !a.matches(obj),
            Filter::Cmp { path, op, value } => {
                let field = lookup(obj, path).unwrap_or(&Value::Null);
                if *value == Literal::Null {
                    let is_null = field.is_null();
                    return match op {
                        CmpOp::Eq => is_null,
                        CmpOp::Ne => !is_null,
                        _ => false,
                    };
                }
                // A collection property matches when any element does (lenient `machineTags eq 'x'`).
                if let Value::Array(items) = field {
                    return match op {
                        CmpOp::Ne => !items
                            .iter()
                            .any(|i| compare(i, value) == Some(Ordering::Equal)),
                        _ => items.iter().any(|i| cmp_holds(*op, compare(i, value))),
                    };
                }
                if field.is_null() {
                    return *op == CmpOp::Ne;
                }
                cmp_holds(*op, compare(field, value))
            }
            Filter::Func { func, path, value } => {
                let needle = value.to_lowercase();
                let test = |s: &str| {
                    let s = s.to_lowercase();
                    match func {
                        StrFunc::Contains => s.contains(&needle),
                        StrFunc::StartsWith => s.starts_with(&needle),
                        StrFunc::EndsWith => s.ends_with(&needle),
                    }
                };
                match lookup(obj, path) {
                    Some(Value::String(s)) => test(s),
                    Some(Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(test)),
                    _ => false,
                }
            }
        }
    }
}

fn cmp_holds(op: CmpOp, ord: Option<Ordering>) -> bool {
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
    }
}

/// One `$orderby` key.
#[derive(Debug, Clone)]
pub struct OrderKey {
    pub path: Vec<String>,
    pub descending: bool,
}

/// Parses `$orderby=a desc, b`.
pub fn parse_orderby(input: &str, allowed: Option<&[&str]>) -> Result<Vec<OrderKey>, FilterError> {
    let mut keys = Vec::new();
    for part in input.split(',') {
        let mut words = part.split_whitespace();
        let Some(field) = words.next() else {
            return Err(FilterError("Empty $orderby clause.".into()));
        };
        if let Some(allowed) = allowed {
            let root = field.split('/').next().unwrap_or(field);
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(root)) {
                return Err(FilterError(format!(
                    "Could not find a property named '{field}' to order by."
                )));
            }
        }
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(FilterError(format!(
                    "Invalid $orderby direction '{other}' (expected asc or desc)."
                )));
            }
        };
        if words.next().is_some() {
            return Err(FilterError(format!(
                "Invalid $orderby clause '{}'.",
                part.trim()
            )));
        }
        keys.push(OrderKey {
            path: field.split('/').map(str::to_string).collect(),
            descending,
        });
    }
    Ok(keys)
}

/// A total order, as `sort_by` requires (it may panic otherwise): values of different kinds
/// sort by kind, null first, and date-time strings before other strings, so that comparing
/// some strings as times and others as text cannot make a cycle.
fn order_values(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    let time = |s: &str| parse_time(s).filter(|_| s.len() >= 10);
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (time(x), time(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Sorts JSON resources by `$orderby` keys (stable).
pub fn sort_by_keys(items: &mut [Value], keys: &[OrderKey]) {
    items.sort_by(|a, b| {
        for k in keys {
            let av = lookup(a, &k.path).unwrap_or(&Value::Null);
            let bv = lookup(b, &k.path).unwrap_or(&Value::Null);
            let mut o = order_values(av, bv);
            if k.descending {
                o = o.reverse();
            }
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// Applies `$select` to a resource: keeps the named properties plus OData annotations.
pub fn select(obj: Value, select: Option<&str>) -> Value {
    let Some(sel) = select else { return obj };
    let fields: Vec<&str> = sel
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match obj {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    k.starts_with('@') || fields.iter().any(|f| f.eq_ignore_ascii_case(k))
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn m(f: &str, v: &Value) -> bool {
        parse_filter(f, None).unwrap().matches(v)
    }

    #[test]
    fn comparisons_and_logic() {
        let v = json!({"healthStatus": "Active", "riskScore": "High", "n": 5, "lastSeen": "2024-05-01T10:00:00.0000000Z", "tags": ["a", "VIP"], "properties": {"status": "New"}});
        assert!(m("healthStatus eq 'active'", &v));
        assert!(m(
            "healthStatus eq 'Active' and (riskScore eq 'Low' or riskScore eq 'High')",
            &v
        ));
        assert!(!m("not (healthStatus eq 'Active')", &v));
        assert!(m("n gt 4 and n le 5", &v));
        assert!(m("lastSeen ge 2024-04-30T00:00:00Z", &v));
        assert!(!m("lastSeen lt 2024-04-30T00:00:00Z", &v));
        assert!(m("lastSeen gt '2024-04-30'", &v));
        assert!(m("contains(healthStatus,'tiv')", &v));
        assert!(m("startswith(healthStatus, 'Act')", &v));
        assert!(m("properties/status ne 'Closed'", &v));
        assert!(m("tags eq 'vip'", &v));
        assert!(m("missing eq null", &v));
        assert!(m("healthStatus ne null", &v));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_filter("healthStatus eqq 'x'", None).unwrap_err();
        assert!(e.0.contains("eqq"), "{e}");
        let e = parse_filter("foo eq 'x'", Some(&["healthStatus"])).unwrap_err();
        assert!(e.0.contains("foo"), "{e}");
        assert!(parse_filter("(a eq 'x'", None).is_err());
        assert!(parse_filter("a eq 'x", None).is_err());
        assert!(parse_filter("a eq 'x' b", None).is_err());
        assert!(parse_filter("substringof('x', a)", None).is_err());
    }

    #[test]
    fn quoted_quote() {
        let v = json!({"name": "O'Brien"});
        assert!(m("name eq 'O''Brien'", &v));
    }

    #[test]
    fn orderby() {
        let mut items = vec![json!({"a": 1}), json!({"a": 3}), json!({"a": 2})];
        sort_by_keys(&mut items, &parse_orderby("a desc", None).unwrap());
        assert_eq!(items[0]["a"], 3);
    }

    #[test]
    fn deep_filters_are_refused_not_a_stack_overflow() {
        let deep = 100_000;
        for f in [
            "(".repeat(deep),
            format!("{}a eq 1", "not ".repeat(deep)),
            format!("a eq 1{}", " and a eq 1".repeat(deep)),
            format!("{}a eq 1{}", "(".repeat(deep), ")".repeat(deep)),
        ] {
            assert_eq!(parse_filter(&f, None), Err(too_deep()));
        }
        // At the limit the filter parses and matches, with room to spare on half the stack a
        // thread has.
        let queries = [
            format!("a eq 1{}", " and a eq 1".repeat(MAX_DEPTH - 1)),
            format!(
                "{}a eq 1{}",
                "(".repeat(MAX_DEPTH - 1),
                ")".repeat(MAX_DEPTH - 1)
            ),
            // An even number of `not`s, so that the filter matches.
            format!("{}a eq 1", "not ".repeat(MAX_DEPTH - 2)),
        ];
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                for f in queries {
                    assert!(m(&f, &json!({"a": 1})), "{}", &f[..40]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
        let one_too_many = format!("a eq 1{}", " and a eq 1".repeat(MAX_DEPTH));
        assert_eq!(parse_filter(&one_too_many, None), Err(too_deep()));
    }

    #[test]
    fn orderby_is_a_total_order_over_mixed_values() {
        // `sort_by` may panic on a comparator that is not a total order. Comparing date-time
        // strings as times and other strings as text made a cycle (A < B < C < A), and values
        // of different kinds all compared equal.
        let cycle = [
            json!("2024-01-01T10:00:00+09:00"),
            json!("2024-01-01T05:00:00Z"),
            json!("2024-01-01T07:00:00 not a time"),
        ];
        let kinds = [
            json!(null),
            json!(true),
            json!(2),
            json!("b"),
            json!([1]),
            json!({}),
        ];
        let mut items: Vec<Value> = (0..64)
            .map(|i| {
                let v = if i % 2 == 0 {
                    cycle[i % cycle.len()].clone()
                } else {
                    kinds[(i / 2) % kinds.len()].clone()
                };
                json!({ "v": v })
            })
            .collect();
        sort_by_keys(&mut items, &parse_orderby("v", None).unwrap());
        assert_eq!(items[0]["v"], Value::Null);
        sort_by_keys(&mut items, &parse_orderby("v desc", None).unwrap());
        assert_eq!(items[63]["v"], Value::Null);
    }

    /// Comparisons and functions over a few properties, near-valid and often not.
    fn filter() -> impl Strategy<Value = String> {
        let property = prop::sample::select(vec![
            "a",
            "n",
            "properties/status",
            "tags",
            "missing",
            "@odata.type",
            "é",
        ]);
        let literal = prop_oneof![
            prop::sample::select(vec![
                "true",
                "false",
                "null",
                "2024-05-01T00:00:00Z",
                "9999-12-31T23:59:59-23:59",
                "1e308",
                "-1e999",
                "00000000-0000-0000-0000-000000000000",
                "''''",
                "'€'",
            ])
            .prop_map(str::to_string),
            any::<i64>().prop_map(|n| n.to_string()),
            "'[^']{0,8}'",
            "-?[0-9][0-9a-zA-Z:.+-]{0,14}",
        ];
        let comparison = (
            property.clone(),
            prop::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le", "has", ""]),
            literal.clone(),
        )
            .prop_map(|(p, op, l)| format!("{p} {op} {l}"));
        let function = (
            prop::sample::select(vec!["contains", "startswith", "endswith", "substringof"]),
            property,
            literal,
        )
            .prop_map(|(f, p, l)| format!("{f}({p}, {l})"));
        prop_oneof![comparison, function].prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec!["and", "or"]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                inner.clone().prop_map(|a| format!("({a})")),
                inner.prop_map(|a| format!("not {a}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `$filter`, `$orderby` and `$select` straight from a query string: parsed, and when
        /// valid applied, without panicking.
        #[test]
        fn query_options_never_panic(
            text in prop_oneof![filter(), any::<String>(), "\\PC{0,3}[ -~]{0,40}"],
        ) {
            let resources = [
                json!({"a": "Active", "n": 5, "tags": ["x", 1, null], "properties": {"status": "New"}, "é": "2024-05-01"}),
                json!({"a": 1, "n": "5", "tags": "x", "properties": null}),
                json!({}),
            ];
            for allowed in [None, Some(&["a", "n", "tags"][..])] {
                if let Ok(f) = parse_filter(&text, allowed) {
                    let _ = f.functions();
                    for r in &resources {
                        let _ = f.matches(r);
                    }
                }
                if let Ok(keys) = parse_orderby(&text, allowed) {
                    let mut items = resources.to_vec();
                    sort_by_keys(&mut items, &keys);
                }
            }
            let _ = select(resources[0].clone(), Some(&text));
        }
    }
}
