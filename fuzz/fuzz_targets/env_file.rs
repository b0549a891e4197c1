//! The env files `fileKeyRef`s read (feature `EnvFiles`). Input: the key on the first line, the
//! file after it. Never panics; a value comes from the file (no `'`, its text in the file once the
//! `\r`s are gone), parsing stops at the key's first assignment (whatever follows it does not
//! matter), an assignment put first always wins, and an error names a line of the file.
#![no_main]

use kubelet::kuberuntime::env_file::{EnvFileError, lookup};
use libfuzzer_sys::fuzz_target;

fn error_line(e: &EnvFileError) -> usize {
    use EnvFileError::*;
    match *e {
        MissingEquals { line }
        | EmptyName { line }
        | BlankBeforeEquals { line }
        | UnquotedValue { line }
        | ContentAfterQuote { line }
        | UnclosedQuote { line }
        | LineTooLong { line } => line,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (key, text) = input.split_once('\n').unwrap_or((input, ""));
    match lookup(text, key) {
        Ok(Some(value)) => {
            assert!(!value.contains('\''), "value {value:?} holds a quote");
            assert!(text.replace('\r', "").contains(&value.replace('\r', "")), "value {value:?} is not from the file");
            let longer = format!("{text}\n'unclosed\nno equals sign\n");
            assert_eq!(lookup(&longer, key), Ok(Some(value)), "what follows the assignment changed it");
        }
        Ok(None) => {}
        Err(e) => {
            let lines = text.split_terminator('\n').count();
            assert!((1..=lines).contains(&error_line(&e)), "{e} in a file of {lines} lines");
        }
    }
    let plain_key = !key.is_empty()
        && key.len() < 1024
        && !key.contains(['=', '\r'])
        && !key.starts_with([' ', '\t', '#'])
        && !key.ends_with([' ', '\t']);
    if plain_key {
        let value: String = text.chars().filter(|c| !matches!(c, '\'' | '\r')).take(64).collect();
        let first = format!("{key}='{value}'\n{text}");
        assert_eq!(lookup(&first, key), Ok(Some(value)), "the first assignment did not win");
    }
});
