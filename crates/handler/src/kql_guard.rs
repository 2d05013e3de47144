//! KQL reaches Microsoft's query engines verbatim from a model or a stored hunt. Queries are
//! read-only by construction, but the engines also accept management (control) commands, which
//! start with a dot (`.drop table`, `.set-or-append`, `.ingest` ...). They are refused here, before
//! any call, for every tool and hunt that runs KQL.
//!
//! A command hidden after a string literal the guard misreads is the attack, so the query is read
//! the way Kusto's own lexer reads it, and whatever Kusto would reject, or another reader could
//! read differently, is refused rather than guessed at. The sources:
//! - the string data type, <https://learn.microsoft.com/azure/data-explorer/kusto/query/scalar-data-types/string>
//!   (MicrosoftDocs/dataexplorer-docs, `data-explorer/kusto/query/scalar-data-types/string.md`):
//!   `'…'` and `"…"` with backslash escapes; verbatim `@'…'` and `@"…"`, where a backslash is
//!   itself and a quote is written twice; multi-line ```` ```…``` ```` without escapes; an `h` or
//!   `H` before any of them only hides the text from telemetry (obfuscated literals);
//! - Kusto's lexer, microsoft/Kusto-Query-Language `src/Kusto.Language/Parser/TokenParser.cs`
//!   and `TextFacts.cs`: `~~~…~~~` as the alternate multi-line quote (`@` and `h` may precede
//!   either), the escape list (`\\ \' \" \a \b \f \n \r \t \v \xHH \uHHHH \UHHHHHHHH` and octal),
//!   single-line literals ending at a line break (CR, LF, U+2028, U+2029), `//` comments to the
//!   end of the line as the only comments, `#` starting a client directive that runs to the end
//!   of the line, and `datetime(…)`-style literals whose text up to `)` is not tokenised; and its
//!   grammar, `grammar/KqlTokens.g4` in the same repository, for the same forms;
//! - the datetime data type, <https://learn.microsoft.com/azure/data-explorer/kusto/query/scalar-data-types/datetime>:
//!   such literals never need quotes.

use unicode_normalization::UnicodeNormalization;

/// The longest query accepted; Microsoft's own limits are larger, but a query this long from a
/// model is a mistake, not a hunt.
pub const MAX_QUERY_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KqlRefusal {
    #[error("the query is empty (nothing but whitespace or comments)")]
    Empty,
    #[error("the query is {0} characters; at most {MAX_QUERY_CHARS} are accepted")]
    TooLong(usize),
    #[error(
        "'{0}' is a KQL control (management) command: a '.' that starts the query, a line or a statement after ';' makes one; only queries are accepted here, control commands such as .drop, .alter, .set, .append, .ingest or .purge are refused"
    )]
    ControlCommand(String),
    #[error(
        "the string literal opened with {opening} on line {line} is not closed; '…', \"…\", @'…' and @\"…\" literals must close on the line they open (write \\n for a line break inside them), ```…``` and ~~~…~~~ literals with the same three characters"
    )]
    UnterminatedString { opening: String, line: usize },
    #[error(
        "'{escape}' on line {line} is not a KQL escape sequence; inside '…' and \"…\" a backslash must start one of \\\\ \\' \\\" \\a \\b \\f \\n \\r \\t \\v \\xHH \\uHHHH \\UHHHHHHHH or an octal code; for a plain backslash write \\\\ or use a verbatim literal such as @'C:\\temp\\'"
    )]
    InvalidEscape { escape: String, line: usize },
    #[error(
        "'{prefix}' directly before a quote on line {line} is not a KQL string prefix, and the literal after it holds a backslash, which KQL reads as an escape there; the prefixes are h or H (obfuscated) and @ (verbatim, where a backslash is itself: @'C:\\temp\\'), or put a space between a name and a string"
    )]
    UnknownStringPrefix { prefix: char, line: usize },
    #[error(
        "'#' on line {line} starts a client directive (such as #connect), which is not part of a query; a '#' is accepted inside a string literal or a comment"
    )]
    Directive { line: usize },
    #[error(
        "the {keyword}(…) literal on line {line} contains {found}: Kusto reads its text up to ')' as is, while elsewhere that character opens a string, a comment or a new statement; write the value bare, e.g. datetime(2024-01-01 10:00) or guid(74be27de-1e4e-49d9-b579-fe0b331d3642)"
    )]
    AmbiguousLiteral {
        keyword: String,
        found: String,
        line: usize,
    },
    #[error(
        "'~' follows the operator '{operator}' on line {line}: '=~', '!~' and 'in~' take one '~', and three in a row open a ~~~ multi-line string, so put a space between the operator and such a literal"
    )]
    AmbiguousTilde { operator: String, line: usize },
    #[error(
        "a backtick on line {line} outside a string literal does not open a ```…``` multi-line string; a backtick is accepted only as that delimiter or inside a string literal"
    )]
    StrayBacktick { line: usize },
    #[error(
        "control character {} on line {line}: tab, line feed and carriage return are the only control characters accepted; inside a string literal write it as an escape such as \\x1b or \\u0085",
        code_point(.found)
    )]
    ControlCharacter { found: char, line: usize },
    #[error(
        "bidirectional formatting character {} on line {line} outside a string literal: it makes a query display differently from how it runs; it is accepted only inside string literals",
        code_point(.found)
    )]
    BidiControl { found: char, line: usize },
    #[error(
        "'{found}' ({}) on line {line} is outside a string literal, where KQL takes ASCII punctuation, letters and digits; put other text inside a string literal ('…', or ['…'] for a name)",
        code_point(.found)
    )]
    OutsideString { found: char, line: usize },
    #[error(
        "'{found}' ({}) on line {line} outside a string literal is a look-alike that Unicode NFKC normalisation turns into '{reads_as}'; write plain ASCII outside string literals (look-alikes are accepted inside them)",
        code_point(.found)
    )]
    LookAlike {
        found: char,
        reads_as: String,
        line: usize,
    },
    #[error(
        "read after Unicode NFKC normalisation (which turns look-alikes such as U+FF0E into '.', U+037E into ';' and U+FF07 into a quote, and drops invisible format characters), the query is refused: {0}; write plain ASCII outside string literals, and \\u escapes for look-alike quotes or backslashes inside them"
    )]
    Normalised(Box<KqlRefusal>),
}

fn code_point(c: &char) -> String {
    format!("U+{:04X}", u32::from(*c))
}

/// Accepts a query and returns it trimmed; refuses control commands anywhere Kusto or a client
/// could start one (the start of the query, of a line, or of a statement after `;`), and
/// anything that would make that judgement a guess.
pub fn check_query(query: &str) -> Result<&str, KqlRefusal> {
    let trimmed = query.trim();
    let length = trimmed.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(KqlRefusal::TooLong(length));
    }
    refuse_control_characters(trimmed)?;
    let reading = Reader::read(trimmed)?;
    if !reading.has_tokens {
        return Err(KqlRefusal::Empty);
    }
    // A reader that normalises (an editor, a proxy, a future engine) must not find a command or a
    // string boundary that the text as sent hides; look-alikes are therefore judged both ways.
    // NFKC leaves ASCII as it is and ASCII has no format characters: most queries skip this.
    if !trimmed.is_ascii() {
        let normalised: String = trimmed.chars().filter(|c| !is_format(*c)).nfkc().collect();
        if normalised != trimmed {
            Reader::read(&normalised)
                .map_err(|refusal| KqlRefusal::Normalised(Box::new(refusal)))?;
        }
    }
    match reading.look_alike {
        Some(refusal) => Err(refusal),
        None => Ok(trimmed),
    }
}

/// For KQL that is stored to run later (a workbook step, an item of a backup): refuses what
/// [`check_query`] refuses, except emptiness. Stored content may hold a step or parameter whose
/// query is not written yet; text with nothing to run hides no command, and refusing it would
/// refuse a whole workbook or backup for nothing.
pub fn check_stored_query(query: &str) -> Result<(), KqlRefusal> {
    match check_query(query) {
        Ok(_) | Err(KqlRefusal::Empty) => Ok(()),
        Err(refusal) => Err(refusal),
    }
}

/// Other readers end lines or comments at characters such as U+0085 or a vertical tab that
/// Kusto does not, so raw control characters are refused wherever they are.
fn refuse_control_characters(text: &str) -> Result<(), KqlRefusal> {
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            c if is_line_break(c) => line += 1,
            '\t' => {}
            c if c.is_control() => return Err(KqlRefusal::ControlCharacter { found: c, line }),
            _ => {}
        }
    }
    Ok(())
}

/// Words that Kusto's lexer or grammar follow, when `(` comes next, with literal text they do not
/// tokenise (`datetime(2024-01-01)`). Compared without case, and with aliases, so that the guard
/// errs towards treating a word as such a literal: see [`Reader::literal_call`].
const RAW_LITERAL_WORDS: &[&str] = &[
    "bool", "boolean", "date", "datetime", "decimal", "double", "guid", "int", "int32", "int64",
    "long", "real", "time", "timespan", "typeof", "uniqueid", "uuid",
];

/// What a reading that refused nothing found: whether the query has any token at all, and the
/// first look-alike, refused only once the normalised reading has had its say.
struct Reading {
    has_tokens: bool,
    look_alike: Option<KqlRefusal>,
}

/// Kusto's lexer, reduced to what decides where a statement or line starts: string literals,
/// comments, separators and line breaks.
struct Reader {
    chars: Vec<char>,
    at: usize,
    line: usize,
    /// The next token begins the query, a line or a statement: a `.` there is a command.
    at_start: bool,
    has_tokens: bool,
    look_alike: Option<KqlRefusal>,
}

impl Reader {
    fn read(text: &str) -> Result<Reading, KqlRefusal> {
        let mut reader = Reader {
            chars: text.chars().collect(),
            at: 0,
            line: 1,
            at_start: true,
            has_tokens: false,
            look_alike: None,
        };
        while let Some(c) = reader.peek(0) {
            reader.step(c)?;
        }
        Ok(Reading {
            has_tokens: reader.has_tokens,
            look_alike: reader.look_alike,
        })
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn peeks(&self, ahead: usize, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.peek(ahead + i) == Some(c))
    }

    /// The length of the line break at the cursor, CR LF counting as one.
    fn line_break(&self) -> Option<usize> {
        match self.peek(0)? {
            '\r' if self.peek(1) == Some('\n') => Some(2),
            c if is_line_break(c) => Some(1),
            _ => None,
        }
    }

    fn step(&mut self, c: char) -> Result<(), KqlRefusal> {
        if let Some(length) = self.line_break() {
            self.at += length;
            self.line += 1;
            self.at_start = true;
            return Ok(());
        }
        if is_bidi_control(c) {
            return Err(KqlRefusal::BidiControl {
                found: c,
                line: self.line,
            });
        }
        if is_blank(c) {
            self.at += 1;
            return Ok(());
        }
        if self.peeks(0, "//") {
            return self.comment();
        }
        if self.at_start && c == '.' {
            return Err(KqlRefusal::ControlCommand(self.command_verb()));
        }
        self.at_start = false;
        self.has_tokens = true;
        self.token(c)
    }

    fn token(&mut self, c: char) -> Result<(), KqlRefusal> {
        match c {
            ';' => {
                self.at += 1;
                self.at_start = true;
            }
            '\'' | '"' => return self.quoted(c, false, None),
            '@' => match self.peek(1) {
                Some(quote @ ('\'' | '"')) => {
                    self.at += 1;
                    return self.quoted(quote, true, None);
                }
                _ if self.peeks(1, "```") || self.peeks(1, "~~~") => {
                    self.at += 1;
                    return self.multi_line();
                }
                _ => self.at += 1,
            },
            '`' if self.peeks(0, "```") => return self.multi_line(),
            '`' => return Err(KqlRefusal::StrayBacktick { line: self.line }),
            '~' if self.peeks(0, "~~~") => return self.multi_line(),
            '=' | '!' | '<' | '>' => return self.comparison(c),
            '#' => return Err(KqlRefusal::Directive { line: self.line }),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '$' => return self.word(),
            c if c.is_ascii() => self.at += 1,
            c => return self.non_ascii(c),
        }
        Ok(())
    }

    /// Two-character operators first, as Kusto matches the longest: `==~~~a~~~` compares with a
    /// `~~~` literal, `=~~~~a~~~` does not.
    fn comparison(&mut self, first: char) -> Result<(), KqlRefusal> {
        self.at += 1;
        match (first, self.peek(0)) {
            ('=' | '!' | '<' | '>', Some('=')) | ('<', Some('|' | '>')) | ('=', Some('>')) => {
                self.at += 1;
                Ok(())
            }
            ('=' | '!', _) => self.operator_tilde(first.to_string()),
            _ => Ok(()),
        }
    }

    /// `=~`, `!~` and `in~` take the `~` before a `~~~` literal could: `x =~~~~a~~~` is not what
    /// it looks like, so a second `~` is refused.
    fn operator_tilde(&mut self, operator: String) -> Result<(), KqlRefusal> {
        if self.peek(0) == Some('~') {
            self.at += 1;
            if self.peek(0) == Some('~') {
                return Err(KqlRefusal::AmbiguousTilde {
                    operator: format!("{operator}~"),
                    line: self.line,
                });
            }
        }
        Ok(())
    }

    fn word(&mut self) -> Result<(), KqlRefusal> {
        let start = self.at;
        self.at += 1;
        while self
            .peek(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.at += 1;
        }
        let word: String = self.chars[start..self.at].iter().collect();
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok(());
        }
        if word.eq_ignore_ascii_case("in") {
            return self.operator_tilde(word);
        }
        if RAW_LITERAL_WORDS
            .iter()
            .any(|raw| word.eq_ignore_ascii_case(raw))
        {
            return self.literal_call(&word);
        }
        // `h'…'` is an obfuscated literal and reads like `'…'`; any other single letter is a name,
        // which a model may have meant as another language's raw-string prefix (`r'C:\x\'`).
        let prefix = word.chars().next().filter(|c| !matches!(c, 'h' | 'H'));
        match (word.len(), prefix, self.peek(0)) {
            (1, Some(prefix), Some(quote @ ('\'' | '"'))) => {
                self.quoted(quote, false, Some(prefix))
            }
            _ => Ok(()),
        }
    }

    /// Kusto's lexer reads `datetime(…)` up to `)` or the end of the line without tokenising it,
    /// its published grammar (KqlTokens.g4) up to `)` across lines, and other readers tokenise
    /// it. All agree when the text closes on its line and holds no character that opens a
    /// string, a comment, a directive or a statement; anything else is refused, and the text is
    /// then read on as ordinary tokens.
    fn literal_call(&self, keyword: &str) -> Result<(), KqlRefusal> {
        let mut ahead = 0;
        while matches!(self.peek(ahead), Some(' ' | '\t')) {
            ahead += 1;
        }
        if self.peek(ahead) != Some('(') {
            return Ok(());
        }
        ahead += 1;
        loop {
            let found = match self.peek(ahead) {
                Some(')') => return Ok(()),
                None => "no ')'".to_string(),
                Some(c) if is_line_break(c) => "a line break before ')'".to_string(),
                Some(c @ ('\'' | '"' | '`' | '~' | ';' | '#')) => format!("'{c}'"),
                Some('/') if self.peek(ahead + 1) == Some('/') => "'//'".to_string(),
                Some(_) => {
                    ahead += 1;
                    continue;
                }
            };
            return Err(KqlRefusal::AmbiguousLiteral {
                keyword: keyword.to_string(),
                found,
                line: self.line,
            });
        }
    }

    /// A `'…'` or `"…"` literal, verbatim after `@`; the cursor is on the opening quote.
    fn quoted(
        &mut self,
        quote: char,
        verbatim: bool,
        foreign_prefix: Option<char>,
    ) -> Result<(), KqlRefusal> {
        let line = self.line;
        let unterminated = || KqlRefusal::UnterminatedString {
            opening: if verbatim {
                format!("@{quote}")
            } else {
                quote.to_string()
            },
            line,
        };
        self.at += 1;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(unterminated());
            };
            if is_line_break(c) {
                return Err(unterminated());
            }
            if c == quote {
                if verbatim && self.peek(1) == Some(quote) {
                    self.at += 2;
                    continue;
                }
                self.at += 1;
                return Ok(());
            }
            if c == '\\' && !verbatim {
                if let Some(prefix) = foreign_prefix {
                    return Err(KqlRefusal::UnknownStringPrefix { prefix, line });
                }
                self.escape()?;
                continue;
            }
            self.at += 1;
        }
    }

    /// A backslash escape: Kusto ends the literal at one it does not know, so the guard refuses it.
    fn escape(&mut self) -> Result<(), KqlRefusal> {
        let hex = |digits: usize| {
            (2..2 + digits).all(|i| self.peek(i).is_some_and(|c| c.is_ascii_hexdigit()))
        };
        let octal = |ahead: usize| self.peek(ahead).is_some_and(|c| matches!(c, '0'..='7'));
        let length = match self.peek(1) {
            Some('\\' | '\'' | '"' | 'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v') => Some(2),
            Some('x') => hex(2).then_some(4),
            Some('u') => hex(4).then_some(6),
            Some('U') => hex(8).then_some(10),
            // One to three octal digits, three only from \0 to \3 (at most \377).
            Some(first @ '0'..='7') => Some(if !octal(2) {
                2
            } else if first <= '3' && octal(3) {
                4
            } else {
                3
            }),
            _ => None,
        };
        match length {
            Some(length) => {
                self.at += length;
                Ok(())
            }
            None => Err(KqlRefusal::InvalidEscape {
                escape: self.chars[self.at..(self.at + 2).min(self.chars.len())]
                    .iter()
                    .collect(),
                line: self.line,
            }),
        }
    }

    /// A ```` ```…``` ```` or `~~~…~~~` literal: no escapes, line breaks allowed; the cursor is on
    /// the opening delimiter.
    fn multi_line(&mut self) -> Result<(), KqlRefusal> {
        let delimiter: String = self.chars[self.at..self.at + 3].iter().collect();
        let line = self.line;
        self.at += 3;
        loop {
            if self.peek(0).is_none() {
                return Err(KqlRefusal::UnterminatedString {
                    opening: delimiter,
                    line,
                });
            }
            if self.peeks(0, &delimiter) {
                self.at += 3;
                return Ok(());
            }
            match self.line_break() {
                Some(length) => {
                    self.at += length;
                    self.line += 1;
                }
                None => self.at += 1,
            }
        }
    }

    /// A `//` comment, up to (not including) the line break.
    fn comment(&mut self) -> Result<(), KqlRefusal> {
        while let Some(c) = self.peek(0) {
            if is_line_break(c) {
                break;
            }
            if is_bidi_control(c) {
                return Err(KqlRefusal::BidiControl {
                    found: c,
                    line: self.line,
                });
            }
            self.at += 1;
        }
        Ok(())
    }

    /// Kusto's identifiers and punctuation are ASCII: a name in another script is let through (it
    /// is the engine's to accept), a look-alike of ASCII is noted for after the normalised
    /// reading, and anything else outside a string is refused.
    fn non_ascii(&mut self, c: char) -> Result<(), KqlRefusal> {
        let reads_as: String = std::iter::once(c).nfkc().collect();
        if reads_as.chars().ne(std::iter::once(c)) {
            self.look_alike.get_or_insert(KqlRefusal::LookAlike {
                found: c,
                reads_as,
                line: self.line,
            });
        } else if !c.is_alphanumeric() {
            return Err(KqlRefusal::OutsideString {
                found: c,
                line: self.line,
            });
        }
        self.at += 1;
        Ok(())
    }

    /// The command's name, for the refusal: the `.` and the word after it.
    fn command_verb(&self) -> String {
        self.chars[self.at..]
            .iter()
            .take(64)
            .enumerate()
            .take_while(|(i, c)| *i == 0 || c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .map(|(_, c)| c)
            .collect()
    }
}

/// Line breaks as Kusto's lexer counts them (TextFacts.IsLineBreakStart).
fn is_line_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{2028}' | '\u{2029}')
}

/// Space between tokens: Kusto's whitespace other than line breaks (TextFacts.IsWhitespace, less
/// the form feed, refused as a control character) and the invisible format characters, which are
/// judged as if absent so that none can separate a line start from a `.`.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{A0}' | '\u{1680}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    ) || ('\u{2000}'..='\u{200A}').contains(&c)
        || is_format(c)
}

/// Characters that reorder how text is displayed (the Trojan Source trick).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// General Category Cf (format) as of Unicode 15.1, from the Unicode Character Database
/// (DerivedGeneralCategory.txt): zero-width spaces and joiners, the byte-order mark, the soft
/// hyphen, bidirectional controls, tags and the like.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn queries_pass() {
        for query in [
            "DeviceProcessEvents | where FileName =~ 'powershell.exe' | take 10",
            "let x = 1; SecurityEvent | take x",
            "SigninLogs | where ResultDescription has '.drop'",
            "// .drop table x\nHeartbeat | take 1",
            r"T | where x == @'C:\temp\'",
            r#"T | where x == @"C:\temp\""#,
            r#"T | where s has ";.drop table x""#,
            "SecurityEvent\n| where EventID == 4625\n| summarize count() by Account\n| top 10 by count_",
            "let threshold = 5;\nlet window = 1h;\nSigninLogs\n| where TimeGenerated > ago(window)\n| summarize n = count() by UserPrincipalName\n| where n > threshold",
            "T | where score > 0.5 and ratio < .5e1",
            "T | where TimeGenerated between (datetime(2024-01-01) .. datetime(2024-01-02 10:30:00))",
            "T | where Id == guid(74be27de-1e4e-49d9-b579-fe0b331d3642) and Age < timespan(1d)",
            r#"T | extend d = dynamic({"a":".drop"})"#,
            r#"T | extend d = dynamic({"a":"x)"})"#,
            r#"T | extend s = strcat("a", 'b')"#,
            "T | where s in~ ('a', 'b') and t !~ 'c' and u =~ 'd' and v !in~ ('e')",
            "T | where a ==~~~x~~~ and b !=~~~y~~~ and c <=```z``` and d >= 1",
            "T | where s has'x' | where t contains\"y\"",
            "T\r\n| where x == 1\r\n| take 5",
            "T\n\t| take 5",
            "\u{FEFF}Heartbeat | take 1",
            "T | take 1 // trailing comment with .drop and ';' and '",
            "T | where Name == ['列名'] and City == 'Zürich' and Note has '．drop'",
            r"T | where s matches regex '\\d+\\.\\d+' and t == '\x41\u0042\U00000043\101\0'",
            "T | where Account has h'secret' or Account has H\"x\" or Account has h@'C:\\'",
            "T | where FileName has \"\u{202E}gpj.exe\"",
            "T | project-away x | mv-expand y | where a < 5 and b > 2",
            "print s = ```\n.drop table T\n``` | project s",
            "T | where x == ```a``b`c```",
            "print a = @'it''s', b = @\"say \"\"hi\"\"\", c = 'it\\'s'",
        ] {
            assert_eq!(check_query(query), Ok(query.trim()), "{query}");
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
            ("Heartbeat | take 1\n.drop table T", ".drop"),
            ("Heartbeat | take 1\r\n.drop table T", ".drop"),
            ("Heartbeat | take 1\r.drop table T", ".drop"),
            ("Heartbeat | take 1\n\n\t  .drop table T", ".drop"),
            ("Heartbeat | take 1\u{2028}.drop table T", ".drop"),
            ("Heartbeat | take 1;\n// note\n  .show tables", ".show"),
            ("\u{200B}.drop table T", ".drop"),
            ("T\n\u{2060}\u{00AD}.drop table T", ".drop"),
            ("T;. drop table T", "."),
        ] {
            assert_eq!(
                check_query(query),
                Err(KqlRefusal::ControlCommand(verb.into())),
                "{query}"
            );
        }
    }

    #[test]
    fn stored_queries_may_be_empty_but_nothing_else_is_relaxed() {
        for query in ["", "  \n", "// not written yet", "T | take 1"] {
            assert_eq!(check_stored_query(query), Ok(()), "{query:?}");
        }
        assert_eq!(
            check_stored_query("T | take 1; .drop table T"),
            Err(KqlRefusal::ControlCommand(".drop".into()))
        );
        assert!(matches!(
            check_stored_query("T | where a == 'open"),
            Err(KqlRefusal::UnterminatedString { .. })
        ));
    }

    /// Each literal form, once hiding nothing (the query runs) and once closed early by a trick
    /// that a naive reader takes for part of the literal (the hidden command is refused).
    #[test]
    fn every_literal_form_both_ways() {
        for (form, hides_nothing, hides_a_command) in [
            (
                "'…'",
                r"T | where a == 'x\'y'",
                r"T | where a == 'x\\'; .drop table T //'",
            ),
            (
                "\"…\"",
                r#"T | where a == "x\"y""#,
                r#"T | where a == "x\\"; .drop table T //""#,
            ),
            (
                "@'…'",
                r"T | where a == @'x\'",
                r"T | where a == @'\'; .drop table T //'",
            ),
            (
                "@\"…\"",
                r#"T | where a == @"x\""#,
                r#"T | where a == @"\"; .drop table T //""#,
            ),
            (
                "h'…'",
                r"T | where a == h'x\'y'",
                r"T | where a == h'\\'; .drop table T //'",
            ),
            (
                "H\"…\"",
                r#"T | where a == H"x""#,
                r#"T | where a == H"\\"; .drop table T //""#,
            ),
            (
                "h@'…'",
                r"T | where a == h@'C:\'",
                r"T | where a == h@'\'; .drop table T //'",
            ),
            (
                "h@\"…\"",
                r#"T | where a == h@"C:\""#,
                r#"T | where a == h@"\"; .drop table T //""#,
            ),
            (
                "@'' doubled",
                "T | where a == @'it''s; .drop table T'",
                r"T | where a == @'a''\'; .drop table T //'",
            ),
            (
                "```",
                "T | where a == ```x\n;.drop```",
                "T | where a == ```x```; .drop table T //```",
            ),
            (
                "h```",
                "T | where a == h```x\\```",
                "T | where a == h```\\```\n.drop table T",
            ),
            (
                "@```",
                "T | where a == @```x```",
                "T | where a == @```x```;.drop table T",
            ),
            (
                "~~~",
                "T | where a == ~~~x\n.drop~~~",
                "T | where a == ~~~x~~~\n.drop table T //~~~",
            ),
            (
                "h~~~",
                "T | where a == h~~~'~~~",
                "T | where a == h~~~'~~~; .drop table T //'",
            ),
        ] {
            assert!(
                check_query(hides_nothing).is_ok(),
                "{form}: {hides_nothing}"
            );
            assert_eq!(
                check_query(hides_a_command),
                Err(KqlRefusal::ControlCommand(".drop".into())),
                "{form}: {hides_a_command}"
            );
        }
    }

    /// Tricks seen or foreseen, each with the start of the refusal it must meet (its `Debug`
    /// form: the variant, and the one inside a normalised reading).
    const TRICKS: &[(&str, &str)] = &[
        (r"T | where a == @'\'; .drop table T", "ControlCommand"),
        (r#"T | where a == @"\"; .drop table T"#, "ControlCommand"),
        ("T | where a == ```x```; .drop table T", "ControlCommand"),
        ("T | where a == ~~~x~~~; .drop table T", "ControlCommand"),
        ("T | where a == h'x'; .drop table T", "ControlCommand"),
        ("T | where a == H'x'\n.drop table T", "ControlCommand"),
        (r"T | where a == h@'\'; .drop table T", "ControlCommand"),
        (r#"T | where a == h@"\"; .drop table T"#, "ControlCommand"),
        ("T | where a == h```x```\n.drop table T", "ControlCommand"),
        ("T\n.drop table T", "ControlCommand"),
        ("T\r\n.drop table T", "ControlCommand"),
        ("T\r\n\t.drop table T", "ControlCommand"),
        ("T\n\n.drop table T", "ControlCommand"),
        ("T |\n  \t.drop table T", "ControlCommand"),
        (
            "T | take 1\n\u{FF0E}drop table T",
            "Normalised(ControlCommand",
        ),
        ("\u{FF0E}drop table T", "Normalised(ControlCommand"),
        ("\u{2024}drop table T", "Normalised(ControlCommand"),
        ("\u{FE52}drop table T", "Normalised(ControlCommand"),
        ("\u{200B}.drop table T", "ControlCommand"),
        ("\u{200C}.drop table T", "ControlCommand"),
        ("\u{200D}.drop table T", "ControlCommand"),
        ("\u{2060}.drop table T", "ControlCommand"),
        ("\u{00AD}.drop table T", "ControlCommand"),
        ("\u{FEFF}.drop table T", "ControlCommand"),
        (
            "T | take 1\u{037E} .drop table T",
            "Normalised(ControlCommand",
        ),
        (
            "T | take 1\u{FF1B} .drop table T",
            "Normalised(ControlCommand",
        ),
        (
            "T | take 1\u{FE54}.drop table T",
            "Normalised(ControlCommand",
        ),
        (
            "T | where a == 'x\u{FF07}; .drop table T //'",
            "Normalised(ControlCommand",
        ),
        (
            "T | where a == \"x\u{FF02}; .drop table T //\"",
            "Normalised(ControlCommand",
        ),
        (
            "T | where a == 'x\u{FF3C}' | take 1",
            "Normalised(UnterminatedString",
        ),
        ("T | where a == 'unterminated", "UnterminatedString"),
        ("T | where a == \"unterminated", "UnterminatedString"),
        ("T | where a == @'unterminated", "UnterminatedString"),
        ("T | where a == ```unterminated", "UnterminatedString"),
        ("T | where a == ~~~unterminated", "UnterminatedString"),
        ("T | where a == 'no\nline breaks'", "UnterminatedString"),
        (
            "T | where a == 'no\u{2028}line breaks'",
            "UnterminatedString",
        ),
        (r"T | where a == '\q'; .drop table T //'", "InvalidEscape"),
        (r"T | where a == '\u12'", "InvalidEscape"),
        (
            r"T | where a == r'C:\temp\'; .drop table T //'",
            "UnknownStringPrefix",
        ),
        (
            "T | where t > datetime(')\n.drop table T\n| x == ')",
            "AmbiguousLiteral",
        ),
        (
            "T | where t > datetime(2024-01-01; .drop table T)",
            "AmbiguousLiteral",
        ),
        (
            "T | where t > int64(```)\n.drop table T\n```)",
            "AmbiguousLiteral",
        ),
        ("T | where t > DateTime(\")\"", "AmbiguousLiteral"),
        (
            "T | where t > datetime(2024\n```)\n.drop table T\n```)",
            "AmbiguousLiteral",
        ),
        ("T | where t > typeof(string", "AmbiguousLiteral"),
        ("T | where a =~~~~x~~~", "AmbiguousTilde"),
        ("T | where a in~~~~x~~~", "AmbiguousTilde"),
        ("#connect cluster('x').database('y')\nT", "Directive"),
        ("T | where a == 1 ` .drop", "StrayBacktick"),
        ("T | where a == 1\u{0085}.drop table T", "ControlCharacter"),
        (
            "T | take 1 // note\u{000B}.drop table T",
            "ControlCharacter",
        ),
        ("T | where a == 'x\u{0000}'", "ControlCharacter"),
        ("T | where a == 1 \u{202E} | take 1", "BidiControl"),
        ("T | take 1 // \u{2066}hidden\u{2069}", "BidiControl"),
        ("T | where a \u{FF1D}\u{FF1D} 1", "LookAlike"),
        ("T | where a == 1 \u{2022} 2", "OutsideString"),
        ("", "Empty"),
        ("   \n\t", "Empty"),
        ("// only a comment", "Empty"),
        ("\u{FEFF}", "Empty"),
    ];

    #[test]
    fn tricks_are_refused() {
        for (trick, refusal) in TRICKS {
            let outcome = check_query(trick);
            assert!(
                outcome
                    .as_ref()
                    .is_err_and(|r| format!("{r:?}").starts_with(refusal)),
                "{trick:?}: expected {refusal}, got {outcome:?}"
            );
        }
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let cases: &[(&str, KqlRefusal)] = &[
            (
                "T | where a == 'x",
                KqlRefusal::UnterminatedString {
                    opening: "'".into(),
                    line: 1,
                },
            ),
            (
                "T\n| where a == @\"x",
                KqlRefusal::UnterminatedString {
                    opening: "@\"".into(),
                    line: 2,
                },
            ),
            (
                "T | where a == ~~~x",
                KqlRefusal::UnterminatedString {
                    opening: "~~~".into(),
                    line: 1,
                },
            ),
            (
                r"T | where a == '\q'",
                KqlRefusal::InvalidEscape {
                    escape: r"\q".into(),
                    line: 1,
                },
            ),
            (
                r"T | where a == r'C:\x'",
                KqlRefusal::UnknownStringPrefix {
                    prefix: 'r',
                    line: 1,
                },
            ),
            ("#connect x", KqlRefusal::Directive { line: 1 }),
            (
                "T | where t > datetime('2024-01-01')",
                KqlRefusal::AmbiguousLiteral {
                    keyword: "datetime".into(),
                    found: "'''".into(),
                    line: 1,
                },
            ),
            (
                "T | where a =~~~~x~~~",
                KqlRefusal::AmbiguousTilde {
                    operator: "=~".into(),
                    line: 1,
                },
            ),
            ("T | take 1 `", KqlRefusal::StrayBacktick { line: 1 }),
            (
                "T\n| where a == 'x\u{1b}'",
                KqlRefusal::ControlCharacter {
                    found: '\u{1b}',
                    line: 2,
                },
            ),
            (
                "T | take 1 \u{202E}",
                KqlRefusal::BidiControl {
                    found: '\u{202E}',
                    line: 1,
                },
            ),
            (
                "T | where a \u{2260} 1",
                KqlRefusal::OutsideString {
                    found: '\u{2260}',
                    line: 1,
                },
            ),
            (
                "T | where a \u{FF1D}= 1",
                KqlRefusal::LookAlike {
                    found: '\u{FF1D}',
                    reads_as: "=".into(),
                    line: 1,
                },
            ),
            (
                "T\n\u{FF0E}drop table T",
                KqlRefusal::Normalised(Box::new(KqlRefusal::ControlCommand(".drop".into()))),
            ),
            (
                "T | take 1\u{037E}.drop table T",
                KqlRefusal::Normalised(Box::new(KqlRefusal::ControlCommand(".drop".into()))),
            ),
            ("// nothing else", KqlRefusal::Empty),
        ];
        for (query, refusal) in cases {
            assert_eq!(check_query(query).as_ref(), Err(refusal), "{query:?}");
            assert!(!refusal.to_string().is_empty());
        }
        let message = KqlRefusal::ControlCharacter {
            found: '\u{85}',
            line: 3,
        }
        .to_string();
        assert!(
            message.starts_with("control character U+0085 on line 3"),
            "{message}"
        );
    }

    #[test]
    fn empty_and_oversize_queries_are_refused() {
        assert_eq!(check_query("  \n"), Err(KqlRefusal::Empty));
        assert!(matches!(
            check_query(&"x".repeat(MAX_QUERY_CHARS + 1)),
            Err(KqlRefusal::TooLong(_))
        ));
    }

    /// Pieces that break naive readers, mixed with arbitrary characters.
    fn content() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("`".to_string()),
            Just("~".to_string()),
            Just("@'".to_string()),
            Just(";".to_string()),
            Just("//".to_string()),
            Just("#".to_string()),
            Just("\n.drop table T\n".to_string()),
            Just("; .drop table T".to_string()),
            Just("\u{FF0E}drop".to_string()),
            Just("\u{037E}".to_string()),
            Just("\u{200B}".to_string()),
            Just("\u{202E}".to_string()),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// Characters that would end or escape-break a literal, raw or after NFKC normalisation.
    fn breaks_literal(c: char, delimiters: &[char]) -> bool {
        let special = |c: char| c.is_control() || is_line_break(c) || delimiters.contains(&c);
        special(c) || std::iter::once(c).nfkc().any(special)
    }

    /// `content` as a correctly written literal of one of Kusto's forms.
    fn literal(form: usize, content: &str) -> String {
        let prefix = ["", "h", "H"][form % 3];
        match form / 3 {
            0 | 1 => {
                let quote = if form / 3 == 0 { '\'' } else { '"' };
                let mut text = format!("{prefix}{quote}");
                for c in content.chars() {
                    match c {
                        '\\' => text.push_str(r"\\"),
                        '\n' => text.push_str(r"\n"),
                        '\t' => text.push_str(r"\t"),
                        c if c == quote => {
                            text.push('\\');
                            text.push(c);
                        }
                        c if breaks_literal(c, &['\\', '\'', '"']) => {
                            text.push_str(&format!("\\U{:08X}", u32::from(c)));
                        }
                        c => text.push(c),
                    }
                }
                text.push(quote);
                text
            }
            2 | 3 => {
                let quote = if form / 3 == 2 { '\'' } else { '"' };
                let body: String = content
                    .chars()
                    .filter(|c| *c == quote || !breaks_literal(*c, &[quote]))
                    .flat_map(|c| {
                        let doubled = (c == quote).then_some(c);
                        std::iter::once(c).chain(doubled)
                    })
                    .collect();
                format!("{prefix}@{quote}{body}{quote}")
            }
            _ => {
                let delimiter = if form / 3 == 4 { '`' } else { '~' };
                let body: String = content
                    .chars()
                    .filter(|c| {
                        (!c.is_control() || matches!(c, '\n' | '\r' | '\t'))
                            && !std::iter::once(*c).nfkc().any(|n| n == delimiter)
                    })
                    .collect();
                let fence = delimiter.to_string().repeat(3);
                format!("{prefix}{fence}{body}{fence}")
            }
        }
    }

    const FORMS: usize = 18;

    const BENIGN_PREFIXES: &[&str] = &[
        "T",
        "SigninLogs | where TimeGenerated > ago(1d)",
        "let a = 1;\nlet b = 'x';\nSecurityEvent\n| where EventID == 4625",
        "DeviceProcessEvents // a comment; with .drop\n| take 5",
        "T | where t > datetime(2024-01-01)",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_content_inside_any_literal_runs(form in 0..FORMS, content in content()) {
            let query = format!("T | where x == {}", literal(form, &content));
            prop_assert_eq!(check_query(&query), Ok(query.as_str()));
        }

        #[test]
        fn a_command_after_any_literal_is_refused(
            prefix in proptest::sample::select(BENIGN_PREFIXES),
            form in 0..FORMS,
            content in content(),
            separator in proptest::sample::select(&[";\n", "\n", "\r\n", "; ", ";", "\n\n\t", "\u{2028}"][..]),
        ) {
            let query = format!(
                "{prefix}\n| where x == {}{separator}.drop table T",
                literal(form, &content)
            );
            prop_assert_eq!(
                check_query(&query),
                Err(KqlRefusal::ControlCommand(".drop".into()))
            );
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>(), tricky in content()) {
            let _ = check_query(&text);
            let _ = check_query(&tricky);
            let _ = check_query(&format!("{text}{tricky}"));
        }
    }
}
