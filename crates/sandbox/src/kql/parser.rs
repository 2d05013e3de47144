//! The parser: tokens to a [`Query`](super::ast::Query), refusing what the subset does not support
//! with the construct and its position.

use super::ast::*;
use super::lexer::*;
use super::*;

pub(super) const SUPPORTED_OPERATORS: &str = "where, filter, take, limit, project, project-away, project-rename, extend, summarize, order by, sort by, top, distinct, count";

/// How deep expressions may nest in parentheses, call arguments, `in` lists and minus signs.
/// The parser recurses once per level, so a query of a hundred thousand `(` would otherwise
/// overflow the serving thread's stack and take the whole sandbox down; a level costs about
/// 23 KB of stack in a debug build, and a thread has 2 MiB.
pub(super) const MAX_NESTING: usize = 32;

/// How deep an expression tree may be (nesting plus chains such as `a or b or c ...`).
/// Binding, evaluating and dropping an expression recurse once per level, about 7 KB each in
/// a debug build.
pub(super) const MAX_DEPTH: usize = 128;

/// How many expression nodes the uses of `let` names may copy in all: each use copies the
/// bound expression, so `let b = a + a; let c = b + b; ...` grows exponentially.
pub(super) const MAX_LET_NODES: usize = 100_000;

/// An expression and its depth (the longest path to a leaf), which the parser keeps within
/// [`MAX_DEPTH`].
pub(super) type Parsed = (Expr, usize);

/// A `let` binding: the expression, its depth and its number of nodes.
pub(super) struct LetValue {
    pub(super) expr: Expr,
    pub(super) depth: usize,
    pub(super) nodes: usize,
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) toks: Vec<Token>,
    pub(super) pos: usize,
    /// Scalar `let` bindings, substituted where the name is used.
    pub(super) lets: HashMap<String, LetValue>,
    /// How many `unary` calls are active: the parser's own recursion depth, within
    /// [`MAX_NESTING`].
    pub(super) nesting: usize,
    /// Nodes copied by the uses of `let` names so far.
    pub(super) let_nodes: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    pub(super) fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    pub(super) fn cur(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    pub(super) fn bump(&mut self) -> Token {
        let t = self.cur().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    pub(super) fn err_here(&self, message: impl Into<String>) -> QueryError {
        let t = self.cur();
        let message = message.into();
        syntax_at(self.src, t.start, Some(&t.text), message)
    }

    pub(super) fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == w)
    }

    pub(super) fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, QueryError> {
        if *self.peek() == tok {
            Ok(self.bump())
        } else {
            let found = self.cur().text.clone();
            Err(self.err_here(format!("Expected {what} but found '{found}'.")))
        }
    }

    pub(super) fn ident(&mut self, what: &str) -> Result<(String, usize), QueryError> {
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

    pub(super) fn query(&mut self) -> Result<Query, QueryError> {
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

    pub(super) fn source(&mut self) -> Result<Source, QueryError> {
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

    pub(super) fn operator(&mut self) -> Result<(Op, usize, &'static str), QueryError> {
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

    pub(super) fn sort_key(&mut self) -> Result<SortKey, QueryError> {
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
    pub(super) fn named_list(&mut self, _aggs: bool) -> Result<Vec<NamedExpr>, QueryError> {
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

    pub(super) fn expr(&mut self) -> Result<Expr, QueryError> {
        Ok(self.or_expr()?.0)
    }

    /// The depth of a node over children of the given depths, refused past [`MAX_DEPTH`].
    pub(super) fn node(
        &self,
        children: impl IntoIterator<Item = usize>,
    ) -> Result<usize, QueryError> {
        let depth = children.into_iter().max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(self.err_here(format!(
                "The expression is more than {MAX_DEPTH} operations deep, which the sandbox does not evaluate; 'in (...)' replaces a long chain of 'or'."
            )));
        }
        Ok(depth)
    }

    pub(super) fn or_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.and_expr()?;
        while self.is_word("or") {
            self.bump();
            let (right, right_depth) = self.and_expr()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    pub(super) fn and_expr(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, mut depth) = self.cmp_expr()?;
        while self.is_word("and") {
            self.bump();
            let (right, right_depth) = self.cmp_expr()?;
            depth = self.node([depth, right_depth])?;
            left = Expr::Bin(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    pub(super) fn cmp_expr(&mut self) -> Result<Parsed, QueryError> {
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

    pub(super) fn add_expr(&mut self) -> Result<Parsed, QueryError> {
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

    pub(super) fn mul_expr(&mut self) -> Result<Parsed, QueryError> {
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
    pub(super) fn unary(&mut self) -> Result<Parsed, QueryError> {
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

    pub(super) fn signed(&mut self) -> Result<Parsed, QueryError> {
        if *self.peek() == Tok::Minus {
            self.bump();
            let (inner, inner_depth) = self.unary()?;
            let depth = self.node([inner_depth])?;
            return Ok((Expr::Neg(Box::new(inner)), depth));
        }
        self.primary()
    }

    pub(super) fn primary(&mut self) -> Result<Parsed, QueryError> {
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
pub(super) fn parse_timespan_text(raw: &str) -> Option<Duration> {
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

pub(super) fn parse(query: &str) -> Result<Query, QueryError> {
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
