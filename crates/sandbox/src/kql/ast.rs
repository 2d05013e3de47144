//! The syntax tree the parser builds and the binder reads.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
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
pub(super) enum StrOp {
    Contains,
    Has,
    StartsWith,
    EndsWith,
    HasPrefix,
}

pub(super) fn str_op(word: &str) -> Option<BinOp> {
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
pub(super) enum Expr {
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
    pub(super) fn nodes(&self) -> usize {
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
pub(super) struct NamedExpr {
    pub(super) name: Option<String>,
    pub(super) expr: Expr,
}

#[derive(Debug, Clone)]
pub(super) struct SortKey {
    pub(super) expr: Expr,
    pub(super) desc: bool,
    pub(super) nulls_first: Option<bool>,
}

#[derive(Debug, Clone)]
pub(super) enum Source {
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
pub(super) enum Op {
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
pub(super) struct Query {
    pub(super) source: Source,
    pub(super) ops: Vec<(Op, usize, &'static str)>,
}
