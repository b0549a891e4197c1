//! The boundary between rule text and the kernel: a [`RulesApplier`] runs one
//! transaction (`nft -f -`, `iptables-restore --noflush`) atomically.
//!
//! The real appliers spawn the tools through a [`Tool`], which can prefix every
//! command with `ip netns exec NAME` so tests program a network namespace they
//! created instead of the host. [`cleanup`] removes what every mode left
//! behind (`kube-proxy --cleanup`). The recording fake used by tests lives in
//! the `test-support` crate. Nothing here decides *what* to write.

pub mod cleanup;
mod iptables;
pub mod ipvs;
pub(crate) mod netlink;
mod nft;
pub mod nft_netlink;

use std::process::{Command, Stdio};

pub use iptables::{IptablesApplier, stale_chain_deletions};
pub use nft::{ApplyCounts, NftApplier};

/// Why a transaction (or one command of it) could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The command line that could not start (see `Tool::describe`).
        tool: String,
        /// The spawn or wait error.
        #[source]
        source: std::io::Error,
    },
    /// The tool refused the transaction (nothing was applied); `message` is its stderr.
    #[error("{tool} rejected the transaction: {message}")]
    Rejected {
        /// The command line that failed, or the kernel interface for netlink appliers.
        tool: String,
        /// The tool's stderr, trimmed (its exit status if it printed nothing), or the netlink error.
        message: String,
    },
}

/// Applies one rules transaction atomically (all or nothing).
pub trait RulesApplier {
    /// Applies `transaction`: `iptables-restore` text for the iptables and IPVS modes, `nft -f` text
    /// for nftables.
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError>;

    /// Applies an nftables transaction. The nftables applier sends one that
    /// has a netlink form ([`crate::nftables::Transaction::commands`])
    /// without `nft`; every other applier runs its text.
    fn apply_nft(&mut self, transaction: &crate::nftables::Transaction) -> Result<(), ApplyError> {
        self.apply(transaction.as_str())
    }

    /// `(chains, sets and maps)` of table `kube-proxy` of `family` as the kernel has
    /// them (nftables only; `None` when unknown), so a full sync can remove
    /// what an earlier process left behind.
    fn existing_objects(&mut self, _family: crate::net::IpFamily) -> Option<(Vec<String>, Vec<String>)> {
        None
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The tool exited with status 0.
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything the tool wrote to stdout, lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything the tool wrote to stderr, lossily decoded as UTF-8.
    pub stderr: String,
}

/// How to run one of the kernel tools (`nft`, `iptables`, `conntrack`, ...):
/// the program, optionally inside a named network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    program: String,
    netns: Option<String>,
}

impl Tool {
    /// Runs `program` (looked up in `PATH`) in the current network namespace.
    pub fn new(program: impl Into<String>) -> Self {
        Tool { program: program.into(), netns: None }
    }

    /// Runs the tool with `ip netns exec NAME` (a namespace under `/run/netns`).
    pub fn in_netns(mut self, netns: Option<&str>) -> Self {
        self.netns = netns.map(str::to_string);
        self
    }

    /// The program's name or path, as given to `new`.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// `nft -f -` (or `ip netns exec ns nft -f -`), for messages.
    pub fn describe(&self, args: &[&str]) -> String {
        let mut s = match &self.netns {
            Some(ns) => format!("ip netns exec {ns} {}", self.program),
            None => self.program.clone(),
        };
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs the tool to completion, feeding `stdin` if given. A non-zero exit
    /// is not an error here: callers decide what a failure means.
    pub fn output(&self, args: &[&str], stdin: Option<&str>) -> Result<ToolOutput, ApplyError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &self.program]);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawn_err = |source| ApplyError::Spawn { tool: self.describe(args), source };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin was piped");
            // A tool that exits early closes the pipe; its stderr says why.
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        Ok(ToolOutput {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs the tool; a non-zero exit becomes [`ApplyError::Rejected`] with its stderr.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, ApplyError> {
        let out = self.output(args, stdin)?;
        if out.success { Ok(out.stdout) } else { Err(ApplyError::Rejected { tool: self.describe(args), message: failure_message(&out) }) }
    }
}

/// The tool's stderr trimmed, or its exit status if it said nothing.
fn failure_message(out: &ToolOutput) -> String {
    let msg = out.stderr.trim();
    if !msg.is_empty() {
        msg.to_string()
    } else {
        match out.code {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_and_missing_tool() {
        let t = Tool::new("nft").in_netns(Some("kn-1"));
        assert_eq!(t.describe(&["-f", "-"]), "ip netns exec kn-1 nft -f -");
        let missing = Tool::new("/nonexistent/knode-tool");
        let err = missing.run(&["x"], None).unwrap_err();
        assert!(matches!(err, ApplyError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/knode-tool x"));
    }

    #[test]
    fn rejected_carries_stderr() {
        let sh = Tool::new("sh");
        let err = sh.run(&["-c", "cat >/dev/null; echo 'bad rule' >&2; exit 1"], Some("x\n")).unwrap_err();
        match err {
            ApplyError::Rejected { message, .. } => assert_eq!(message, "bad rule"),
            other => panic!("{other}"),
        }
        assert_eq!(sh.run(&["-c", "echo ok"], None).unwrap(), "ok\n");
    }
}
