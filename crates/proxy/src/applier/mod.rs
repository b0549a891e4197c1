//! The boundary between rule text and the kernel: a [`RulesApplier`] runs one
//! transaction (`nft -f -`, `iptables-restore --noflush`) atomically. The real
//! implementations (spawning the tools) live with the binary; the recording
//! fake used by tests lives in `tests/support`.

/// Why a transaction could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    /// The tool refused the transaction (nothing was applied).
    #[error("{tool} rejected the transaction: {message}")]
    Rejected { tool: String, message: String },
}

/// Applies one rules transaction atomically (all or nothing).
pub trait RulesApplier {
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError>;
}
