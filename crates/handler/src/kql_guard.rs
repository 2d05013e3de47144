//! KQL reaches Microsoft's query engines verbatim from a model or a stored hunt. Queries are
//! read-only by construction, but the engines also accept management (control) commands, which
//! start with a dot (`.drop table`, `.set-or-append`, `.ingest` ...). They are refused here, before
//! any call, for every tool and hunt that runs KQL.

/// The longest query accepted; Microsoft's own limits are larger, but a query this long from a
/// model is a mistake, not a hunt.
pub const MAX_QUERY_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KqlRefusal {
    #[error("the query is empty")]
    Empty,
    #[error("the query is {0} characters; at most {MAX_QUERY_CHARS} are accepted")]
    TooLong(usize),
    #[error(
        "'{0}' is a KQL control (management) command; only queries are accepted here, control commands such as .drop, .alter, .set, .append, .ingest or .purge are refused"
    )]
    ControlCommand(String),
}

/// Accepts a query; refuses control commands anywhere a statement can start (the first
/// statement, or after a `;`), ignoring comments and string literals.
pub fn check_query(query: &str) -> Result<&str, KqlRefusal> {
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err(KqlRefusal::Empty);
    }
    let length = trimmed.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(KqlRefusal::TooLong(length));
    }
    for statement in statements(trimmed) {
        let statement = statement.trim_start();
        if let Some(command) = statement.strip_prefix('.') {
            let verb: String = command
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            return Err(KqlRefusal::ControlCommand(format!(".{verb}")));
        }
    }
    Ok(trimmed)
}

/// Splits on `;` outside string literals, with `//` comments removed.
fn statements(query: &str) -> Vec<String> {
    let mut statements = vec![String::new()];
    let mut chars = query.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        push(&mut statements, c);
                        push(&mut statements, escaped);
                    }
                    continue;
                }
                if c == q {
                    quote = None;
                }
                push(&mut statements, c);
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    push(&mut statements, c);
                }
                '/' if chars.peek() == Some(&'/') => {
                    for skipped in chars.by_ref() {
                        if skipped == '\n' {
                            push(&mut statements, '\n');
                            break;
                        }
                    }
                }
                ';' => statements.push(String::new()),
                _ => push(&mut statements, c),
            },
        }
    }
    statements
}

fn push(statements: &mut [String], c: char) {
    if let Some(last) = statements.last_mut() {
        last.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass() {
        for query in [
            "DeviceProcessEvents | where FileName =~ 'powershell.exe' | take 10",
            "let x = 1; SecurityEvent | take x",
            "SigninLogs | where ResultDescription has '.drop'",
            "// .drop table x\nHeartbeat | take 1",
        ] {
            assert!(check_query(query).is_ok(), "{query}");
        }
    }

    #[test]
    fn control_commands_are_refused_where_a_statement_starts() {
        for (query, verb) in [
            (".drop table SecurityEvent", ".drop"),
            ("  .set-or-append T <| T", ".set-or-append"),
            ("Heartbeat | take 1; .ingest into table T (h'x')", ".ingest"),
            ("// comment\n.purge table T", ".purge"),
            (".alter-merge table T policy retention", ".alter-merge"),
        ] {
            assert_eq!(
                check_query(query),
                Err(KqlRefusal::ControlCommand(verb.into())),
                "{query}"
            );
        }
    }

    #[test]
    fn empty_and_oversize_queries_are_refused() {
        assert_eq!(check_query("  \n"), Err(KqlRefusal::Empty));
        assert!(matches!(
            check_query(&"x".repeat(MAX_QUERY_CHARS + 1)),
            Err(KqlRefusal::TooLong(_))
        ));
    }
}
