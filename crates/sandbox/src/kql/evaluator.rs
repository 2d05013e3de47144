//! The evaluator: bound expressions over rows, and the tabular operators (`where`, `project`,
//! `summarize`, `sort`, `distinct`, sources and unions).

use super::ast::*;
use super::binder::*;
use super::lexer::*;
use super::*;

pub(super) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
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
pub(super) fn sort_order(a: &Value, b: &Value) -> Ordering {
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

pub(super) fn values_equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(x), Value::String(y)) | (Value::String(y), Value::Bool(x)) => {
            Some(x.to_string() == y.to_lowercase())
        }
        _ => compare(a, b).map(|o| o == Ordering::Equal),
    }
}

/// Kusto `has`: whole-term match, case-insensitive. Terms are runs of alphanumerics.
pub(super) fn has_term(hay: &str, needle: &str, cs: bool) -> bool {
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

pub(super) fn eval(b: &Bound, row: &[Value], opts: &ExecOptions) -> Value {
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

pub(super) fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
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
pub(super) fn shifted(t: OffsetDateTime, d: Duration, back: bool) -> Value {
    let moved = if back {
        t.checked_sub(d)
    } else {
        t.checked_add(d)
    };
    moved.map_or(Value::Null, Value::DateTime)
}

pub(super) fn call(f: Func, v: &[Value], opts: &ExecOptions) -> Value {
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

// Operators

/// Default output column name of an expression: the column for a reference, the first
/// column argument of `bin()` and friends, otherwise `Column1`, `Column2`, ...
pub(super) fn default_name(e: &Expr, counter: &mut usize) -> String {
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

pub(super) fn agg_default_name(func: &str, args: &[Expr]) -> String {
    let f = match func {
        "take_any" => "any",
        other => other,
    };
    match args.first() {
        Some(Expr::Col { name, .. }) => format!("{f}_{name}"),
        _ => format!("{f}_"),
    }
}

pub(super) fn run_where(
    ctx: &Ctx<'_>,
    t: Table,
    pred: &Expr,
    at: usize,
) -> Result<Table, QueryError> {
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

pub(super) fn const_count(ctx: &Ctx<'_>, e: &Expr, at: usize) -> Result<usize, QueryError> {
    let (b, _) = bind(ctx, e, &[])?;
    match eval(&b, &[], ctx.opts) {
        Value::Long(n) if n >= 0 => Ok(n as usize),
        _ => Err(ctx.semantic(at, "expected a non-negative integer constant.".into())),
    }
}

pub(super) fn run_project(
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

pub(super) struct AggSpec {
    pub(super) name: String,
    pub(super) func: AggFunc,
    pub(super) arg: Option<Bound>,
    pub(super) ty: ColType,
}

#[derive(Clone)]
pub(super) enum AggState {
    Count(i64),
    Distinct(HashSet<String>),
    Best(Option<Value>),
    Sum(Option<Value>),
    Avg(f64, i64),
    Set(Vec<Value>, HashSet<String>),
}

pub(super) fn run_summarize(
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

pub(super) fn sort_rows(ctx: &Ctx<'_>, t: &mut Table, keys: &[SortKey]) -> Result<(), QueryError> {
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

pub(super) fn run_distinct(
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

pub(super) fn load_source(
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
