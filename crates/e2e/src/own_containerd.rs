//! A second containerd for one test, fully separate from the suite's (`hack/node-env.sh` with
//! its own socket, root, state, CNI network and bridge, given as environment overrides), purged
//! when the test ends, passed or not. For tests that must not touch the shared runtime (image
//! garbage collection) or need another runtime build (Debian's containerd 1.6).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `hack/node-env.sh`'s variables for the second instance.
pub type NodeEnv = &'static [(&'static str, &'static str)];

/// A running second containerd; `hack/node-env.sh --stop --purge` on drop.
pub struct OwnContainerd {
    env: NodeEnv,
}

/// The repository root (read at run time: cargo may reuse a binary from another checkout
/// sharing the target dir).
pub fn repo_root() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&dir).join("../..")
}

fn node_env(env: NodeEnv, args: &[&str]) -> bool {
    Command::new("bash")
        .arg(repo_root().join("hack/node-env.sh"))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .expect("run hack/node-env.sh")
        .success()
}

impl OwnContainerd {
    /// Starts it (building what `hack/node-env.sh` builds, cached) and points this test's CRI
    /// helpers and kubelets at it (`KNODE_CONTAINERD_SOCK`). Call it first in a test that runs
    /// alone in its process (nextest), before any other thread reads the environment.
    pub fn start(env: NodeEnv) -> Self {
        let own = Self { env };
        assert!(node_env(env, &[]), "hack/node-env.sh for the second containerd failed");
        // SAFETY: see above: no other thread of the test reads the environment yet.
        unsafe { std::env::set_var("KNODE_CONTAINERD_SOCK", own.var("KNODE_CONTAINERD_SOCK")) };
        own
    }

    /// One of its variables, e.g. `KNODE_CONTAINERD_ROOT`.
    pub fn var(&self, key: &str) -> &'static str {
        self.env.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap_or_else(|| panic!("{key} is not set for the second containerd"))
    }

    /// Its variables, for scripts run against it.
    pub fn env(&self) -> NodeEnv {
        self.env
    }
}

impl Drop for OwnContainerd {
    fn drop(&mut self) {
        if !node_env(self.env, &["--stop", "--purge"]) {
            eprintln!("hack/node-env.sh --stop --purge for the second containerd failed");
        }
    }
}
