//! Container log files in the CRI format (`<RFC3339Nano> stdout|stderr F|P <message>`) and the
//! `PodLogOptions` of `GET /containerLogs` (upstream `pkg/kubelet/kuberuntime/logs`).
//!
//! Pure: query pairs → [`LogOptions`]; file text → the bytes `kubectl logs` shows. The handler
//! does the file and runtime I/O.

/// `v1.PodLogOptions` as the kubelet reads them from the query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// `follow`: keep streaming new lines as the container writes them.
    pub follow: bool,
    /// `previous`: read the log of the container's previous (terminated) instance.
    pub previous: bool,
    /// `timestamps`: prefix each line with its RFC 3339 timestamp from the CRI log.
    pub timestamps: bool,
    /// `tailLines` (or `tail`): only the last this many lines; `None` for all.
    pub tail_lines: Option<u64>,
    /// `limitBytes`: stop after this many bytes of output; `None` for no limit.
    pub limit_bytes: Option<u64>,
    /// Only lines at or after this time (Unix nanoseconds), from `sinceSeconds` or `sinceTime`.
    pub since_nanos: Option<i128>,
    /// `stream` (`PodLogsQuerySplitStreams`): only `stdout` or only `stderr` lines; `None` for
    /// `All` or when unset.
    pub stream: Option<&'static str>,
}

/// Why the query is not valid `PodLogOptions`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LogOptionsError {
    /// A query parameter whose value could not be parsed or is out of range.
    #[error("{field}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The `PodLogOptions` field, e.g. `tailLines`.
        field: &'static str,
        /// The value as given in the query.
        value: String,
        /// What is wrong with it, e.g. `not an integer`.
        reason: &'static str,
    },
    /// Both `sinceTime` and `sinceSeconds` were given.
    #[error("at most one of `sinceTime` or `sinceSeconds` may be specified")]
    BothSince,
}

fn parse_bool(field: &'static str, v: &str) -> Result<bool, LogOptionsError> {
    match v {
        "" | "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Ok(false),
        _ => Err(LogOptionsError::Invalid { field, value: v.into(), reason: "not a boolean" }),
    }
}

fn parse_positive(field: &'static str, v: &str, allow_zero: bool) -> Result<u64, LogOptionsError> {
    let n: i64 = v.parse().map_err(|_| LogOptionsError::Invalid { field, value: v.into(), reason: "not an integer" })?;
    if n < 0 || (n == 0 && !allow_zero) {
        let reason = if allow_zero { "must be greater than or equal to 0" } else { "must be greater than 0" };
        return Err(LogOptionsError::Invalid { field, value: v.into(), reason });
    }
    Ok(n as u64)
}

impl LogOptions {
    /// Reads the query (`tail` is the old name of `tailLines`; `tail=all` means no limit).
    pub fn from_query(pairs: &[(String, String)], now_nanos: i128) -> Result<Self, LogOptionsError> {
        let mut o = LogOptions::default();
        let (mut since_seconds, mut since_time) = (None, None);
        for (k, v) in pairs {
            match k.as_str() {
                "follow" => o.follow = parse_bool("follow", v)?,
                "previous" => o.previous = parse_bool("previous", v)?,
                "timestamps" => o.timestamps = parse_bool("timestamps", v)?,
                "tailLines" | "tail" if v == "all" => o.tail_lines = None,
                "tailLines" | "tail" => o.tail_lines = Some(parse_positive("tailLines", v, true)?),
                "limitBytes" => o.limit_bytes = Some(parse_positive("limitBytes", v, false)?),
                "sinceSeconds" => since_seconds = Some(parse_positive("sinceSeconds", v, false)?),
                "stream" => {
                    o.stream = match v.as_str() {
                        "All" => None,
                        "Stdout" => Some("stdout"),
                        "Stderr" => Some("stderr"),
                        _ => {
                            return Err(LogOptionsError::Invalid {
                                field: "stream",
                                value: v.clone(),
                                reason: "must be one of All, Stdout, Stderr",
                            });
                        }
                    }
                }
                "sinceTime" => {
                    since_time = Some(parse_rfc3339(v).ok_or_else(|| LogOptionsError::Invalid {
                        field: "sinceTime",
                        value: v.clone(),
                        reason: "not an RFC 3339 time",
                    })?)
                }
                _ => {}
            }
        }
        o.since_nanos = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err(LogOptionsError::BothSince),
            (Some(s), None) => Some(now_nanos - i128::from(s) * 1_000_000_000),
            (None, t) => t,
        };
        Ok(o)
    }
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time (`2024-05-01T10:00:00.5Z`,
/// `...+02:00`); `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    // RFC 3339 proper, as Go's `time.RFC3339` parse wants it: a `T` between date and time and a
    // `Z` or `±HH:MM` offset (jiff alone would also take a space and `±HHMM`).
    let b = s.as_bytes();
    let offset_ok =
        matches!(b.last(), Some(b'Z' | b'z')) || (b.len() > 6 && b[b.len() - 3] == b':' && matches!(b[b.len() - 6], b'+' | b'-'));
    if !s.is_ascii() || !matches!(b.get(10), Some(b'T' | b't')) || !offset_ok {
        return None;
    }
    s.parse::<k8s_openapi::jiff::Timestamp>().ok().map(|t| t.as_nanosecond())
}

/// One parsed line of a CRI log file.
#[derive(Debug, Clone, PartialEq)]
pub struct CriLine<'a> {
    /// The RFC 3339 (nanosecond) time the runtime wrote the line, as text.
    pub timestamp: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// Tagged `P`: a fragment of a longer line that continues in the next entry (`F` = full).
    pub partial: bool,
    /// The log content after the tag, without the trailing newline.
    pub message: &'a [u8],
}

/// Parses one line (without its `\n`); `None` for lines not in the CRI format.
pub fn parse_line(line: &[u8]) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tag = parts.next()?;
    let message = parts.next().unwrap_or_default();
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    Some(CriLine { timestamp, stream, partial, message })
}

/// Renders the complete lines of `text` (each ending in `\n`) as `kubectl logs` shows them,
/// honouring `sinceTime`/`sinceSeconds` and `timestamps`. Lines that do not parse are skipped.
pub fn render(text: &[u8], o: &LogOptions, out: &mut Vec<u8>) {
    for raw in text.split_inclusive(|b| *b == b'\n') {
        let Some(raw) = raw.strip_suffix(b"\n") else { continue };
        let Some(line) = parse_line(raw) else { continue };
        if o.stream.is_some_and(|s| s != line.stream) {
            continue;
        }
        if let Some(since) = o.since_nanos
            && parse_rfc3339(line.timestamp).is_some_and(|t| t < since)
        {
            continue;
        }
        if o.timestamps {
            out.extend_from_slice(line.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.message);
        if !line.partial {
            out.push(b'\n');
        }
    }
}

/// The byte offset in `text` where its last `n` complete lines start.
pub fn tail_start(text: &[u8], n: u64) -> usize {
    if n == 0 {
        return text.len();
    }
    let end = if text.ends_with(b"\n") { text.len() - 1 } else { text.len() };
    let mut seen = 0;
    for (i, b) in text[..end].iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const LOG: &[u8] = b"2024-01-01T00:00:01.5Z stdout F one\n2024-01-01T00:00:02Z stderr F two\ngarbage\n2024-01-01T00:00:03Z stdout P thr\n2024-01-01T00:00:03.1Z stdout F ee\n2024-01-01T00:00:04Z stdout F incomplete";

    #[test]
    fn renders_complete_lines_joining_partials() {
        let mut out = Vec::new();
        render(LOG, &LogOptions::default(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
        let mut out = Vec::new();
        render(LOG, &LogOptions { timestamps: true, ..Default::default() }, &mut out);
        assert!(String::from_utf8(out).unwrap().starts_with("2024-01-01T00:00:01.5Z one\n2024-01-01T00:00:02Z two\n"));
        let since = parse_rfc3339("2024-01-01T00:00:02Z");
        let mut out = Vec::new();
        render(LOG, &LogOptions { since_nanos: since, ..Default::default() }, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "two\nthree\n");
        for (stream, want) in [(Some("stderr"), "two\n"), (Some("stdout"), "one\nthree\n"), (None, "one\ntwo\nthree\n")] {
            let mut out = Vec::new();
            render(LOG, &LogOptions { stream, ..Default::default() }, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{stream:?}");
        }
        assert_eq!(
            parse_line(b"2024-01-01T00:00:01Z stdout F"),
            Some(CriLine { timestamp: "2024-01-01T00:00:01Z", stream: "stdout", partial: false, message: b"" })
        );
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(tail_start(text, 1), 4);
        assert_eq!(tail_start(text, 2), 2);
        assert_eq!(tail_start(text, 3), 0);
        assert_eq!(tail_start(text, 9), 0);
        assert_eq!(tail_start(text, 0), 6);
        assert_eq!(tail_start(b"", 1), 0);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.5Z"), Some(1_709_208_000_500_000_000));
        // Multi-byte characters where digits or separators belong are refused, not sliced through.
        for bad in ["1970-01-01T00:00:00+0é00", "1970-01-01T00:00:00.é1Z", "1970-01-01T00:00:0é", "é", ""] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56.123456789Z"), Some(1_709_210_096_123_456_789));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00.5Z"), Some(951_868_800_500_000_000));
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn options_from_the_query() {
        let now = 100 * 1_000_000_000;
        let o = LogOptions::from_query(
            &q(&[
                ("follow", "true"),
                ("tailLines", "5"),
                ("limitBytes", "10"),
                ("sinceSeconds", "30"),
                ("timestamps", "1"),
                ("previous", "false"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                previous: false,
                timestamps: true,
                tail_lines: Some(5),
                limit_bytes: Some(10),
                since_nanos: Some(70 * 1_000_000_000),
                stream: None
            }
        );
        assert_eq!(LogOptions::from_query(&q(&[("stream", "Stderr")]), now).unwrap().stream, Some("stderr"));
        assert_eq!(LogOptions::from_query(&q(&[("stream", "All")]), now).unwrap().stream, None);
        assert_eq!(LogOptions::from_query(&q(&[("tail", "all")]), now).unwrap().tail_lines, None);
        assert_eq!(LogOptions::from_query(&q(&[("sinceTime", "1970-01-01T00:00:10Z")]), now).unwrap().since_nanos, Some(10_000_000_000));
        assert_eq!(
            LogOptions::from_query(&q(&[("sinceTime", "1970-01-01T00:00:10Z"), ("sinceSeconds", "1")]), now),
            Err(LogOptionsError::BothSince)
        );
        for (k, v) in [
            ("tailLines", "-1"),
            ("tailLines", "x"),
            ("limitBytes", "0"),
            ("sinceSeconds", "0"),
            ("follow", "yes"),
            ("sinceTime", "now"),
            ("stream", "stdout"),
        ] {
            let e = LogOptions::from_query(&q(&[(k, v)]), now).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{k}: invalid value")), "{e}");
        }
    }
}
