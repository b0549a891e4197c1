//! API requests the node makes, counted from the API server's audit log: the harness runs
//! kube-apiserver with a policy that records every request of the `system:nodes` group once, at
//! `RequestReceived`, with its user, verb and resource (`hack/lib/control-plane-components.sh`).
//! Request counters in `/metrics` carry no user or agent, so the audit log is what tells one
//! node's requests apart — the per-node cost a large cluster pays.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The audit log the harness writes (override with `KNODE_CP_AUDIT_LOG`).
pub fn log_path() -> PathBuf {
    std::env::var("KNODE_CP_AUDIT_LOG").map(PathBuf::from).unwrap_or_else(|_| "/var/log/knode/control-plane/audit-nodes.log".into())
}

/// A position in the audit log; requests are counted from there on.
pub struct Cursor {
    path: PathBuf,
    offset: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    verb: String,
    user: User,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: Option<String>,
}

impl Cursor {
    /// The current end of the log (which must exist: the API server opens it at start).
    pub fn at_end(path: &Path) -> anyhow::Result<Self> {
        let offset = std::fs::metadata(path)
            .with_context(|| format!("audit log {} (restart the control plane: hack/control-plane.sh down && up)", path.display()))?
            .len();
        Ok(Self { path: path.to_owned(), offset })
    }

    /// Requests by `username` since the cursor, keyed `verb resource[/subresource]`.
    pub fn count_since(&self, username: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut file = std::fs::File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(count(&text, username))
    }
}

/// Counts the `RequestReceived` events of `username` in audit-log lines.
fn count(text: &str, username: &str) -> BTreeMap<String, u64> {
    let mut by_kind = BTreeMap::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Event>(line) else { continue };
        if e.user.username != username || e.stage != "RequestReceived" {
            continue;
        }
        let what = match &e.object_ref {
            Some(o) => match &o.subresource {
                Some(sub) => format!("{} {}/{sub}", e.verb, o.resource),
                None => format!("{} {}", e.verb, o.resource),
            },
            None => format!("{} (non-resource)", e.verb),
        };
        *by_kind.entry(what).or_insert(0) += 1;
    }
    by_kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_received_requests_of_one_user_by_verb_and_resource() {
        let lines = [
            r#"{"stage":"RequestReceived","verb":"get","user":{"username":"system:node:n1"},"objectRef":{"resource":"secrets"}}"#,
            r#"{"stage":"RequestReceived","verb":"get","user":{"username":"system:node:n1"},"objectRef":{"resource":"secrets"}}"#,
            r#"{"stage":"RequestReceived","verb":"patch","user":{"username":"system:node:n1"},"objectRef":{"resource":"pods","subresource":"status"}}"#,
            r#"{"stage":"ResponseComplete","verb":"get","user":{"username":"system:node:n1"},"objectRef":{"resource":"secrets"}}"#,
            r#"{"stage":"RequestReceived","verb":"get","user":{"username":"system:node:n2"},"objectRef":{"resource":"secrets"}}"#,
            r#"{"stage":"RequestReceived","verb":"get","user":{"username":"system:node:n1"}}"#,
            "not json",
        ];
        let c = count(&lines.join("\n"), "system:node:n1");
        assert_eq!(c.get("get secrets"), Some(&2));
        assert_eq!(c.get("patch pods/status"), Some(&1));
        assert_eq!(c.get("get (non-resource)"), Some(&1));
        assert_eq!(c.values().sum::<u64>(), 4);
    }
}
