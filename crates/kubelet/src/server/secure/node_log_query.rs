//! Node log query (`GET /logs/?query=…`, upstream's `NodeLogQuery`, GA in 1.36, on with
//! `enableSystemLogQuery`): `query` names services (read from journald with `journalctl` when
//! the journal knows the unit) or, failing that, log files under `/var/log` (`<name>`,
//! `<name>.log`, `<name>/<name>.log`), or one file by path. `sinceTime`, `untilTime` (RFC 3339),
//! `tailLines` (0–100000), `pattern` (a regular expression) and `boot` (≤ 0) go to journalctl.
//!
//! Parsing and validation are pure ([`NodeLogQuery::parse`], [`NodeLogQuery::validate`]) and
//! report errors as upstream's field errors do (`query: Invalid value: …`).

use std::fmt;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;

const MAX_TAIL_LINES: i64 = 100_000;
const MAX_SERVICE_LENGTH: usize = 256;
const MAX_SERVICES: usize = 4;

/// A parsed query; `None` from [`NodeLogQuery::parse`] when the request has none of its
/// parameters (a plain file request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLogQuery {
    /// `query` values without a path separator: systemd units (or `/var/log` file names) to read.
    pub services: Vec<String>,
    /// `query` values containing `/` or `\`: a file path under the node log directory.
    pub files: Vec<String>,
    /// `sinceTime`: only entries at or after this time (journalctl `--since`).
    pub since_time: Option<Timestamp>,
    /// `untilTime`: only entries at or before this time (journalctl `--until`).
    pub until_time: Option<Timestamp>,
    /// `tailLines`: only the last this many entries (0–100000; journalctl `--lines`).
    pub tail_lines: Option<i64>,
    /// `boot`: which boot's entries, 0 the current one, -1 the one before, and so on
    /// (journalctl `--boot`).
    pub boot: Option<i64>,
    /// `pattern`: a regular expression entries must match (journalctl `--grep`); empty for none.
    pub pattern: String,
}

/// One field error, worded as upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldError {
    /// `<field>: Invalid value: <value>: <detail>`.
    Invalid {
        /// The query parameter, e.g. `tailLines`.
        field: &'static str,
        /// The offending value, quoted or listed as upstream prints it.
        value: String,
        /// Why it is invalid.
        detail: String,
    },
    /// `<field>: Required value: <detail>`.
    Required {
        /// The missing query parameter.
        field: &'static str,
        /// Why it is required.
        detail: &'static str,
    },
    /// `<field>: Too many: <got>: must have at most <max> items`.
    TooMany {
        /// The query parameter given too many times.
        field: &'static str,
        /// How many values it had.
        got: usize,
        /// How many it may have.
        max: usize,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Invalid { field, value, detail } => write!(f, "{field}: Invalid value: {value}: {detail}"),
            FieldError::Required { field, detail } => write!(f, "{field}: Required value: {detail}"),
            FieldError::TooMany { field, got, max } => write!(f, "{field}: Too many: {got}: must have at most {max} items"),
        }
    }
}

/// Several field errors as upstream aggregates them: one alone, more in brackets.
pub fn aggregate(errs: &[FieldError]) -> String {
    match errs {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// A list value as apimachinery 0.37 prints it (JSON).
fn string_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn invalid(field: &'static str, value: String, detail: impl Into<String>) -> FieldError {
    FieldError::Invalid { field, value, detail: detail.into() }
}

/// Go's `strconv.Atoi` error text for `v`.
fn atoi(v: &str) -> Result<i64, String> {
    v.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("strconv.Atoi: parsing {}: value out of range", quoted(v))
        }
        _ => format!("strconv.Atoi: parsing {}: invalid syntax", quoted(v)),
    })
}

impl NodeLogQuery {
    /// The query of a request's raw query string.
    pub fn parse(raw_query: &str) -> Result<Option<NodeLogQuery>, Vec<FieldError>> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        let first = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let mut errs = Vec::new();
        let mut q = NodeLogQuery::default();
        let queries: Vec<&String> = pairs.iter().filter(|(n, _)| n == "query").map(|(_, v)| v).collect();
        for v in &queries {
            if v.contains(['/', '\\']) {
                q.files.push(v.to_string());
            } else if !v.trim().is_empty() {
                q.services.push(v.to_string());
            }
        }
        if !queries.is_empty() && q.files.is_empty() && q.services.is_empty() {
            let all: Vec<String> = queries.iter().map(|s| s.to_string()).collect();
            errs.push(invalid("query", string_list(&all), "may not be empty"));
        }
        for (field, slot) in [("sinceTime", &mut q.since_time), ("untilTime", &mut q.until_time)] {
            if let Some(v) = first(field) {
                match v.parse::<Timestamp>() {
                    Ok(t) => *slot = Some(t),
                    Err(_) => errs.push(invalid(field, quoted(v), "invalid time format")),
                }
            }
        }
        for (field, slot) in [("boot", &mut q.boot), ("tailLines", &mut q.tail_lines)] {
            if let Some(v) = first(field) {
                match atoi(v) {
                    Ok(n) => *slot = Some(n),
                    Err(e) => errs.push(invalid(field, quoted(v), e)),
                }
            }
        }
        if let Some(p) = first("pattern") {
            q.pattern = p.to_string();
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok((q != NodeLogQuery::default()).then_some(q))
    }

    fn has_options(&self) -> bool {
        self.since_time.is_some()
            || self.until_time.is_some()
            || self.tail_lines.is_some()
            || self.boot.is_some()
            || !self.pattern.is_empty()
    }

    /// Upstream's validation; `log_dir` is where a queried file must exist.
    pub fn validate(&self, log_dir: &Path) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        for s in &self.services {
            if s.len() > MAX_SERVICE_LENGTH {
                errs.push(invalid("query", quoted(s), format!("length must be less than {MAX_SERVICE_LENGTH}")));
            } else if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c)) {
                errs.push(invalid("query", quoted(s), "input contains unsupported characters"));
            }
        }
        if self.services.len() > MAX_SERVICES {
            errs.push(FieldError::TooMany { field: "query", got: self.services.len(), max: MAX_SERVICES });
        }
        match (self.files.len(), self.services.len()) {
            (0, 0) => errs.push(FieldError::Required { field: "query", detail: "cannot be empty with options" }),
            (f, s) if f > 0 && s > 0 => errs.push(invalid(
                "query",
                quoted(&format!("[{}], [{}]", self.files.join(" "), self.services.join(" "))),
                "cannot specify a file and service",
            )),
            (f, _) if f > 1 => errs.push(invalid("query", string_list(&self.files), "cannot specify more than one file")),
            (1, _) if self.has_options() => errs.push(invalid("query", string_list(&self.files), "cannot specify file with options")),
            (1, _) => {
                if let Err(e) = super::node_logs::stat_beneath(log_dir, &self.files[0]) {
                    errs.push(invalid("query", string_list(&self.files), e.to_string()));
                }
            }
            _ => {}
        }
        if let (Some(since), Some(until)) = (self.since_time, self.until_time)
            && since > until
        {
            errs.push(invalid("untilTime", quoted(&until.to_string()), "must be after `sinceTime`"));
        }
        if let Some(b) = self.boot.filter(|b| *b > 0) {
            errs.push(invalid("boot", b.to_string(), "must be less than 1"));
        }
        if let Some(n) = self.tail_lines.filter(|n| !(0..=MAX_TAIL_LINES).contains(n)) {
            errs.push(invalid("tailLines", n.to_string(), format!("must be between 0 and {MAX_TAIL_LINES}, inclusive")));
        }
        if let Err(e) = regex::Regex::new(&self.pattern) {
            errs.push(invalid("pattern", quoted(&self.pattern), e.to_string()));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// journalctl's arguments for `services` (upstream's, UTC, no pager, precise timestamps).
    pub fn journalctl_args(&self, services: &[String]) -> Vec<String> {
        let mut args = vec!["--utc".to_string(), "--no-pager".into(), "--output=short-precise".into()];
        let day = |t: Timestamp| t.strftime("%Y-%-m-%-d %-H:%-M:%-S").to_string();
        if let Some(t) = self.since_time {
            args.push(format!("--since={}", day(t)));
        }
        if let Some(t) = self.until_time {
            args.push(format!("--until={}", day(t)));
        }
        if let Some(n) = self.tail_lines {
            args.push("--pager-end".into());
            args.push(format!("--lines={n}"));
        }
        args.extend(services.iter().filter(|s| !s.is_empty()).map(|s| format!("--unit={s}")));
        if !self.pattern.is_empty() {
            args.push(format!("--grep={}", self.pattern));
        }
        if let Some(b) = self.boot {
            args.push("--boot".into());
            args.push(b.to_string());
        }
        args
    }
}

#[cfg(test)]
#[path = "node_log_query_tests.rs"]
mod tests;
