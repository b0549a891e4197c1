//! The env-file format that `valueFrom.fileKeyRef` reads (feature `EnvFiles`; upstream
//! `ParseEnv` in `pkg/kubelet/util/env`).
//!
//! Pure: the file's text and a key in, that key's value out. Finding and reading the file inside
//! the pod's volume is [`super::file_key_ref`]'s job; what an empty or missing value means for the
//! container is decided there too.
//!
//! The format is a strict subset of POSIX shell assignments:
//! - lines end at `\n`, one `\r` before it is dropped, and a line of [`MAX_LINE_BYTES`] + 1 bytes
//!   or more is an error (all as Go's `bufio.Scanner` splits lines for upstream);
//! - outside a quoted value, spaces and tabs at the start of a line are ignored, and blank lines
//!   and lines starting with `#` are skipped;
//! - an assignment is `NAME='value'`: the value is in single quotes and taken literally (no
//!   escapes, no expansion); it may span lines (joined with `\n`) and may be followed by blanks
//!   and a `# comment`;
//! - blanks before `=` are an error; a blank right after `=` assigns the empty string, as a shell
//!   would, and the rest of that line is not looked at.
//!
//! Parsing stops at the first assignment to the key: a later one, or a broken line after it, does
//! not matter.

/// The longest line Go's `bufio.Scanner` hands out with its default buffer (64 KiB, which must
/// also hold the `\n`).
pub const MAX_LINE_BYTES: usize = 64 * 1024 - 1;

const BLANKS: [char; 2] = [' ', '\t'];

/// Why an env file is not in the strict format; `line` counts from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// A non-blank, non-comment line has no `=`.
    #[error("line {line}: missing '='")]
    MissingEquals {
        /// The offending line's number.
        line: usize,
    },
    /// A line starts with `=` (after leading blanks).
    #[error("line {line}: empty variable name")]
    EmptyName {
        /// The offending line's number.
        line: usize,
    },
    /// Spaces or tabs between the variable name and `=`.
    #[error("line {line}: whitespace before '=' is not allowed")]
    BlankBeforeEquals {
        /// The offending line's number.
        line: usize,
    },
    /// The value after `=` does not start with a single quote.
    #[error("line {line}: value must be enclosed in single quotes")]
    UnquotedValue {
        /// The offending line's number.
        line: usize,
    },
    /// Something other than blanks or a `# comment` follows the closing quote.
    #[error("line {line}: unexpected content after the closing quote")]
    ContentAfterQuote {
        /// The line of the closing quote.
        line: usize,
    },
    /// `line` is where the value started.
    #[error("line {line}: unclosed single quote")]
    UnclosedQuote {
        /// The line where the quoted value started.
        line: usize,
    },
    /// A line of more than [`MAX_LINE_BYTES`] bytes, which upstream's line scanner refuses.
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// The offending line's number.
        line: usize,
    },
}

/// Numbered lines of `content`, split as Go's `bufio.ScanLines` does.
fn scan_lines(content: &str) -> impl Iterator<Item = Result<(usize, &str), EnvFileError>> {
    content.split_terminator('\n').enumerate().map(|(i, raw)| {
        let line = i + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(EnvFileError::LineTooLong { line });
        }
        Ok((line, raw.strip_suffix('\r').unwrap_or(raw)))
    })
}

/// The value of `key` in the env file `content`: `None` when the file does not assign it,
/// `Some("")` when it assigns the empty string.
pub fn lookup(content: &str, key: &str) -> Result<Option<String>, EnvFileError> {
    let mut lines = scan_lines(content);
    while let Some(next) = lines.next() {
        let (line, text) = next?;
        let text = text.trim_start_matches(BLANKS);
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (name_part, value_part) = text.split_once('=').ok_or(EnvFileError::MissingEquals { line })?;
        let name = name_part.trim_end_matches(BLANKS);
        if name.is_empty() {
            return Err(EnvFileError::EmptyName { line });
        }
        if name.len() != name_part.len() {
            return Err(EnvFileError::BlankBeforeEquals { line });
        }
        if value_part.starts_with(BLANKS) {
            // `NAME= 'x'`: a shell assigns the empty string (and would run `'x'` as a command).
            if name == key {
                return Ok(Some(String::new()));
            }
            continue;
        }
        let quoted = value_part.strip_prefix('\'').ok_or(EnvFileError::UnquotedValue { line })?;
        let value = quoted_value(quoted, line, &mut lines)?;
        if name == key {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// The value whose opening quote ended `first` (on line `start`), continued on the following
/// `lines` until its closing quote.
fn quoted_value<'a>(
    first: &'a str,
    start: usize,
    lines: &mut impl Iterator<Item = Result<(usize, &'a str), EnvFileError>>,
) -> Result<String, EnvFileError> {
    let (mut line, mut rest) = (start, first);
    let mut value = String::new();
    loop {
        if let Some((inside, after)) = rest.split_once('\'') {
            value.push_str(inside);
            let after = after.trim_start_matches(BLANKS);
            if !after.is_empty() && !after.starts_with('#') {
                return Err(EnvFileError::ContentAfterQuote { line });
            }
            return Ok(value);
        }
        value.push_str(rest);
        value.push('\n');
        (line, rest) = lines.next().ok_or(EnvFileError::UnclosedQuote { line: start })??;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(content: &str, key: &str) -> Option<String> {
        lookup(content, key).unwrap_or_else(|e| panic!("{content:?}: {e}"))
    }

    fn error(content: &str, key: &str) -> EnvFileError {
        lookup(content, key).expect_err(content)
    }

    #[test]
    fn quoted_values_are_literal() {
        let file = "A='one'\nB='two words'\nC='$HOME \"x\" \\n $(y)'\nD='a=b'\n";
        assert_eq!(value(file, "A").as_deref(), Some("one"));
        assert_eq!(value(file, "B").as_deref(), Some("two words"));
        assert_eq!(value(file, "C").as_deref(), Some("$HOME \"x\" \\n $(y)"));
        assert_eq!(value(file, "D").as_deref(), Some("a=b"));
        assert_eq!(value(file, "E"), None);
        assert_eq!(value("", "A"), None);
    }

    #[test]
    fn empty_values_are_assignments() {
        assert_eq!(value("A=''\n", "A").as_deref(), Some(""));
        // A blank after `=` assigns the empty string, the rest of the line unread.
        assert_eq!(value("A= 'x'\n", "A").as_deref(), Some(""));
        assert_eq!(value("A=\t'x\n", "A").as_deref(), Some(""));
        assert_eq!(value("A= \nB='b'\n", "A").as_deref(), Some(""));
        // ...and for another key, that line is skipped unchecked.
        assert_eq!(value("A= not 'valid\nB='b'\n", "B").as_deref(), Some("b"));
    }

    #[test]
    fn blank_lines_comments_and_leading_blanks_are_skipped() {
        let file = "\n   \n\t\n# A='commented'\n  # indented comment\n \t A='a'\n";
        assert_eq!(value(file, "A").as_deref(), Some("a"));
        assert_eq!(value("#A='x'", "A"), None);
    }

    #[test]
    fn a_comment_may_follow_the_closing_quote() {
        assert_eq!(value("A='a' # why\n", "A").as_deref(), Some("a"));
        assert_eq!(value("A='a'#tight\n", "A").as_deref(), Some("a"));
        assert_eq!(value("A='a' \t \n", "A").as_deref(), Some("a"));
        assert_eq!(error("A='a' b\n", "A"), EnvFileError::ContentAfterQuote { line: 1 });
        assert_eq!(error("A='a''b'\n", "A"), EnvFileError::ContentAfterQuote { line: 1 });
        // Checked for every assignment before the key, not only the key's.
        assert_eq!(error("X='x' y\nA='a'\n", "A"), EnvFileError::ContentAfterQuote { line: 1 });
    }

    #[test]
    fn values_span_lines_until_the_closing_quote() {
        let file = "A='first\n  second\n\n# not a comment\nlast' # done\nB='b'\n";
        assert_eq!(value(file, "A").as_deref(), Some("first\n  second\n\n# not a comment\nlast"));
        assert_eq!(value(file, "B").as_deref(), Some("b"));
        assert_eq!(value("A='\n'", "A").as_deref(), Some("\n"));
        // The error names the line of the closing quote.
        assert_eq!(error("A='x\ny' z\n", "A"), EnvFileError::ContentAfterQuote { line: 2 });
        // An unclosed quote names the line it opened on.
        assert_eq!(error("B='b'\nA='x\ny\n", "A"), EnvFileError::UnclosedQuote { line: 2 });
        assert_eq!(error("A='", "A"), EnvFileError::UnclosedQuote { line: 1 });
    }

    #[test]
    fn format_errors_name_their_line() {
        assert_eq!(error("A='a'\nB\n", "C"), EnvFileError::MissingEquals { line: 2 });
        assert_eq!(error("='a'\n", "A"), EnvFileError::EmptyName { line: 1 });
        assert_eq!(error("  ='a'\n", "A"), EnvFileError::EmptyName { line: 1 });
        assert_eq!(error("A ='a'\n", "A"), EnvFileError::BlankBeforeEquals { line: 1 });
        assert_eq!(error("A\t='a'\n", "A"), EnvFileError::BlankBeforeEquals { line: 1 });
        assert_eq!(error("A=a\n", "A"), EnvFileError::UnquotedValue { line: 1 });
        assert_eq!(error("A=\"a\"\n", "A"), EnvFileError::UnquotedValue { line: 1 });
        assert_eq!(error("A=\n", "A"), EnvFileError::UnquotedValue { line: 1 });
        assert_eq!(error("\n\nA=\n", "A").to_string(), "line 3: value must be enclosed in single quotes");
    }

    #[test]
    fn the_first_assignment_wins_and_ends_parsing() {
        assert_eq!(value("A='1'\nA='2'\n", "A").as_deref(), Some("1"));
        assert_eq!(value("A='1'\nbroken\n", "A").as_deref(), Some("1"));
        assert_eq!(error("A='1'\nbroken\n", "B"), EnvFileError::MissingEquals { line: 2 });
    }

    #[test]
    fn names_are_everything_before_the_first_equals() {
        assert_eq!(value("A B='x'\n", "A B").as_deref(), Some("x"));
        assert_eq!(value("A='x=y'\n", "A").as_deref(), Some("x=y"));
        assert_eq!(value("a.b-c='x'\n", "a.b-c").as_deref(), Some("x"));
        assert_eq!(value("A='x'\n", "a"), None);
    }

    #[test]
    fn crlf_line_ends_lose_their_carriage_return() {
        assert_eq!(value("A='a'\r\nB='b'\r\n", "A").as_deref(), Some("a"));
        assert_eq!(value("A='a'\r\nB='b'\r", "B").as_deref(), Some("b"));
        assert_eq!(value("A='x\r\ny'\r\n", "A").as_deref(), Some("x\ny"));
        assert_eq!(value("\r\n#c\r\nA='a'\r\n", "A").as_deref(), Some("a"));
        // Only one, and only at the end of a line.
        assert_eq!(value("A='a\rb'\n", "A").as_deref(), Some("a\rb"));
        assert_eq!(error("A='a'\r\r\n", "A"), EnvFileError::ContentAfterQuote { line: 1 });
        // A lone `\r` does not end a line.
        assert_eq!(error("A='a'\rB='b'\n", "B"), EnvFileError::ContentAfterQuote { line: 1 });
    }

    #[test]
    fn lines_longer_than_go_scans_are_errors() {
        let long = |len: usize| format!("A='{}'", "x".repeat(len - 4));
        let max = long(MAX_LINE_BYTES);
        assert_eq!(value(&format!("{max}\n"), "A").map(|v| v.len()), Some(MAX_LINE_BYTES - 4));
        assert_eq!(value(&max, "A").map(|v| v.len()), Some(MAX_LINE_BYTES - 4));
        let over = long(MAX_LINE_BYTES + 1);
        assert_eq!(error(&format!("B='b'\n{over}\n"), "A"), EnvFileError::LineTooLong { line: 2 });
        assert_eq!(error(&over, "A"), EnvFileError::LineTooLong { line: 1 });
        // The `\r` of a CRLF counts, as it is in Go's buffer.
        assert_eq!(error(&format!("{max}\r\n"), "A"), EnvFileError::LineTooLong { line: 1 });
        // A key found before the long line never reaches it.
        assert_eq!(value(&format!("A='a'\n{over}\n"), "A").as_deref(), Some("a"));
        // Inside a multi-line value too.
        assert_eq!(error(&format!("A='\n{}\n'", "x".repeat(MAX_LINE_BYTES + 1)), "A"), EnvFileError::LineTooLong { line: 2 });
    }
}
