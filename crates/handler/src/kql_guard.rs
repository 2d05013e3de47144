//! Query text from a model or a person goes to Log Analytics as a query, never as a control
//! command: a statement that starts with `.` (`.drop table`, `.set-or-replace`, `.show`, ...)
//! is refused before anything is sent. Statements are split on `;` outside string literals and
//! comments, so a `;` or a `.drop` inside a string does not trip it, and a command hidden after
//! a `let` statement does not slip through. Every tool that runs KQL text calls [`check_query`].

/// Control commands that change or destroy data; named in the refusal so the reader sees why.
pub const MANAGEMENT_VERBS: [&str; 11] =
    [".drop", ".alter", ".create", ".delete", ".set", ".append", ".set-or-append", ".set-or-replace", ".ingest", ".purge", ".execute"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KqlRefusal {
    #[error("the query is empty")]
    Empty,
    #[error(
        "statement {statement} is the control command '{command}'{kind}; only queries are accepted (tabular expressions \
         and let statements), never commands that start with '.'"
    )]
    ControlCommand { statement: usize, command: String, kind: &'static str },
    #[error("the query has an unterminated string literal or comment starting at character {0}")]
    Unterminated(usize),
}

/// Refuses control commands; passes every query statement through unchanged.
pub fn check_query(text: &str) -> Result<(), KqlRefusal> {
    let statements = statement_starts(text)?;
    if statements.is_empty() {
        return Err(KqlRefusal::Empty);
    }
    for (index, start) in statements.iter().enumerate() {
        let rest = &text[*start..];
        if rest.starts_with('.') {
            let command: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '(' && *c != ';').take(40).collect();
            let lower = command.to_ascii_lowercase();
            let kind = if MANAGEMENT_VERBS.contains(&lower.as_str()) { " (a management command that changes the workspace)" } else { "" };
            return Err(KqlRefusal::ControlCommand { statement: index + 1, command, kind });
        }
    }
    Ok(())
}

/// Byte offsets of the first significant character of every non-empty statement.
fn statement_starts(text: &str) -> Result<Vec<usize>, KqlRefusal> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut at_statement_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if bytes[i..].starts_with(b"//") {
            i = bytes[i..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |end| i + end + 1);
            continue;
        }
        if c == b';' {
            at_statement_start = true;
            i += 1;
            continue;
        }
        if at_statement_start {
            starts.push(i);
            at_statement_start = false;
        }
        i = skip_token(bytes, i)?;
    }
    Ok(starts)
}

/// The offset after the token at `i`: a whole string literal, or one character.
fn skip_token(bytes: &[u8], i: usize) -> Result<usize, KqlRefusal> {
    let unterminated = || KqlRefusal::Unterminated(i);
    if bytes[i..].starts_with(b"```") {
        let end = find(bytes, i + 3, b"```").ok_or_else(unterminated)?;
        return Ok(end + 3);
    }
    let (verbatim, quote_at) = match bytes[i] {
        b'@' | b'h' | b'H' if matches!(bytes.get(i + 1), Some(b'\'' | b'"')) => (bytes[i] == b'@', i + 1),
        b'\'' | b'"' => (false, i),
        _ => return Ok(i + 1),
    };
    let quote = bytes[quote_at];
    let mut j = quote_at + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if !verbatim => j += 2,
            b if b == quote && verbatim && bytes.get(j + 1) == Some(&quote) => j += 2,
            b if b == quote => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(unterminated())
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|window| window == needle).map(|offset| from + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass() {
        for query in [
            "SecurityEvent | where EventID == 4625 | summarize count() by Account",
            "let x = 5; SecurityEvent | take x",
            "// recent sign-ins\nSigninLogs | where TimeGenerated > ago(1h)",
            "T | where Message == '.drop table T; .purge' | project a.b",
            "T | where Path == @'C:\\temp\\'; T2 | take 1",
            "T | extend s = ```multi\n; .drop line```",
            "T | where x == \"quote \\\" ; .alter\"",
        ] {
            assert_eq!(check_query(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn control_commands_are_refused_wherever_a_statement_starts() {
        for (query, command) in [
            (".drop table SecurityEvent", ".drop"),
            ("  \n.set-or-replace T <| print 1", ".set-or-replace"),
            ("// harmless\n.purge table T records", ".purge"),
            ("let x = 1; .alter table T policy retention", ".alter"),
            ("T | take 1;\n.show tables", ".show"),
            (".execute database script <| .drop table T", ".execute"),
            (".INGEST into table T (h'https://x')", ".INGEST"),
        ] {
            match check_query(query) {
                Err(KqlRefusal::ControlCommand { command: found, .. }) => assert_eq!(found, command, "{query}"),
                other => panic!("{query}: expected a refusal, got {other:?}"),
            }
        }
        let message = check_query("let a = 1; .delete table T records").expect_err("refused").to_string();
        assert!(message.contains("statement 2") && message.contains("management command"), "{message}");
    }

    #[test]
    fn empty_and_malformed_text_is_refused() {
        assert_eq!(check_query(" // only a comment\n ;; "), Err(KqlRefusal::Empty));
        assert!(matches!(check_query("T | where a == 'open"), Err(KqlRefusal::Unterminated(_))));
    }
}
