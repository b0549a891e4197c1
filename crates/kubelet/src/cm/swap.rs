//! `failSwapOn` (upstream's container manager at start): with swap on and `failSwapOn: true`
//! (the default) the kubelet refuses to start. Swap is on when `/proc/swaps` lists any device
//! below its header line; a missing file means no swap.

use std::path::Path;

/// Why the kubelet will not start with this swap.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// Swap is on and `failSwapOn` is true (upstream's message).
    #[error("running with swap on is not supported, please disable swap or set --fail-swap-on flag to false")]
    SwapOn,
    /// `/proc/swaps` exists but could not be read.
    #[error("failed to determine if swap is on: {0}")]
    Read(std::io::Error),
}

/// Whether `/proc/swaps` (its text) lists a swap device.
pub fn swap_on(proc_swaps: &str) -> bool {
    proc_swaps.trim().lines().count() > 1
}

/// Refuses swap when `fail_swap_on`, reading `swaps` under `proc_root`.
pub fn check_swap(fail_swap_on: bool, proc_root: &Path) -> Result<(), SwapError> {
    let text = match std::fs::read_to_string(proc_root.join("swaps")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SwapError::Read(e)),
    };
    if !swap_on(&text) {
        return Ok(());
    }
    tracing::info!(swaps = %text.trim(), "swap is on");
    if fail_swap_on { Err(SwapError::SwapOn) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    #[test]
    fn swap_on_refuses_to_start_unless_allowed() {
        let proc = tempfile::tempdir().unwrap();
        assert!(check_swap(true, proc.path()).is_ok(), "no /proc/swaps: no swap");
        std::fs::write(proc.path().join("swaps"), HEADER).unwrap();
        assert!(check_swap(true, proc.path()).is_ok(), "only the header: no swap");
        std::fs::write(proc.path().join("swaps"), format!("{HEADER}/swapfile   file  1048572  0  -2\n")).unwrap();
        let err = check_swap(true, proc.path()).unwrap_err();
        assert_eq!(err.to_string(), "running with swap on is not supported, please disable swap or set --fail-swap-on flag to false");
        assert!(check_swap(false, proc.path()).is_ok(), "failSwapOn: false allows it");
    }
}
