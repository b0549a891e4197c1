//! What a client sends the kubelet's servers on 10250/10255: the query strings of
//! `/containerLogs`, `/exec`, `/attach` and `/run` (parsed as axum does, `application/x-www-form-urlencoded`),
//! the `/logs/` path below the node log directory, the node log query (`/logs/?query=…`), and
//! the CRI log lines `/containerLogs` renders. The first byte picks the parser. Never panics; a resolved `/logs/` path never leaves its base;
//! a tail never starts past the end; rendering never invents bytes beyond timestamps and newlines.
#![no_main]

use std::path::Path;

use kubelet::server::secure::cri_log::{LogOptions, parse_line, render, tail_start};
use kubelet::server::secure::node_log_query::NodeLogQuery;
use kubelet::server::secure::node_logs::resolve;
use kubelet::server::secure::streaming::StreamOptions;
use libfuzzer_sys::fuzz_target;

fn pairs(query: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(query).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            let q = pairs(rest);
            if let Ok(o) = LogOptions::from_query(&q, 1_700_000_000_000_000_000) {
                let named = |k: &str| q.iter().any(|(key, _)| key == k);
                assert!(o.since_nanos.is_none() || named("sinceTime") || named("sinceSeconds"), "since without a since parameter");
                assert!(o.limit_bytes.is_none() || named("limitBytes"), "limit without limitBytes");
            }
        }
        1 => {
            let _ = StreamOptions::from_query(&pairs(rest));
        }
        2 => {
            let Ok(rel) = std::str::from_utf8(rest) else { return };
            let base = Path::new("/var/log");
            if let Some(p) = resolve(base, rel) {
                assert!(p.starts_with(base), "{rel:?} resolved to {} outside {}", p.display(), base.display());
                assert!(!p.components().any(|c| matches!(c, std::path::Component::ParentDir)), "{rel:?} kept a '..'");
            }
        }
        3 => {
            // A node log query that validates only ever hands journalctl safe unit names.
            let Ok(raw) = std::str::from_utf8(rest) else { return };
            if let Ok(Some(q)) = NodeLogQuery::parse(raw)
                && q.validate(Path::new("/nonexistent-knode-fuzz-logs")).is_ok()
            {
                assert!(q.files.is_empty() || q.services.is_empty());
                let args = q.journalctl_args(&q.services);
                let units: Vec<&String> = args.iter().filter(|a| a.starts_with("--unit=")).collect();
                assert_eq!(units.len(), q.services.iter().filter(|s| !s.is_empty()).count());
                for u in units {
                    assert!(u["--unit=".len()..].chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c)), "unsafe unit {u:?}");
                }
            }
        }
        _ => {
            // CRI log text: every line parses or is skipped; rendering adds at most a timestamp,
            // a space and a newline per line.
            for raw in rest.split(|b| *b == b'\n') {
                if let Some(line) = parse_line(raw) {
                    assert!(line.message.len() <= raw.len());
                }
            }
            let n = u64::from(rest.first().copied().unwrap_or(0));
            assert!(tail_start(rest, n) <= rest.len());
            let opts = LogOptions::from_query(&pairs(b"timestamps=true"), 0).expect("valid options");
            let mut out = Vec::new();
            render(rest, &opts, &mut out);
            assert!(out.len() <= rest.len() * 2 + 1, "render grew {} bytes into {}", rest.len(), out.len());
        }
    }
});
