//! The binder: names and functions in an expression resolved against a table's columns, with
//! their types, before any row is read.

use super::ast::*;
use super::lexer::*;
use super::*;

/// An expression bound to a schema: columns are indexes, functions are resolved.
#[derive(Debug, Clone)]
pub(super) enum Bound {
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
pub(super) enum Func {
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
pub(super) enum AggFunc {
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

pub(super) struct Ctx<'a> {
    pub(super) src: &'a str,
    pub(super) op: &'static str,
    pub(super) opts: &'a ExecOptions,
}

impl Ctx<'_> {
    pub(super) fn semantic(&self, at: usize, message: String) -> QueryError {
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

pub(super) fn resolve_col(
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

pub(super) fn bind(
    ctx: &Ctx<'_>,
    e: &Expr,
    schema: &[Column],
) -> Result<(Bound, ColType), QueryError> {
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

pub(super) fn lit_type(v: &Value) -> ColType {
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

pub(super) fn agg_func(name: &str) -> Option<AggFunc> {
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
