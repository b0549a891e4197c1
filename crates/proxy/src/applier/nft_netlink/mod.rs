//! nftables syncs sent straight to the kernel over `NETLINK_NETFILTER`,
//! without `nft`: partial syncs whole, full syncs after their skeleton.
//!
//! Why: before `nft` 1.0.6 runs an `add rule`, `add element` or `delete
//! chain` it dumps every chain of the table into its cache. At 10k Services
//! that is ~110k chains and over two seconds of kernel time, for a change
//! that touches a dozen chains. The batch built here names tables, chains
//! and sets by name, so the kernel needs no cache and a one-Service change
//! costs what it changes, and a full sync skips `nft`'s parsing of every
//! line. Only the commands of the per-Service part have an encoding (see
//! [`crate::nftables::Command`]); the caller runs anything else — the full
//! sync's fixed skeleton included — through `nft -f`.
//!
//! The batch is atomic like `nft -f`: one refused command and the kernel
//! applies none of it, and the error names that command.

mod consts;
mod encode;
mod expr;
mod list;
mod udata;

use std::io;
use std::time::Duration;

pub use encode::{Batch, batch, element_key, element_verdict};
pub use expr::{Unsupported, rule_expressions};

use crate::applier::netlink::{NLM_F_ACK, NetlinkSocket, in_netns, messages};
use crate::nftables::Transaction;

/// How long to wait for the kernel's answer to a batch.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a transaction did not go through netlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkApplyError {
    /// The transaction has a command without an encoding: use `nft`.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The kernel refused a command; nothing was applied.
    #[error("the kernel refused `{command}`: {source}")]
    Rejected {
        /// The refused command's line of the transaction text (or `the batch` when unknown).
        command: String,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
    /// The socket failed (not the kernel's verdict on the rules).
    #[error("nf_tables netlink: {0}")]
    Io(#[source] io::Error),
}

/// A transaction's batch, encoded and numbered, not sent yet.
#[derive(Debug)]
pub struct Prepared {
    bytes: Vec<u8>,
    /// The `BATCH_BEGIN`'s sequence number.
    base: u32,
    /// The sequence number of the message whose ACK ends the batch.
    last: u32,
    /// Commands in the batch (0: nothing to send).
    commands: usize,
}

/// A `NETLINK_NETFILTER` socket for nf_tables batches.
#[derive(Debug)]
pub struct NftNetlink {
    socket: NetlinkSocket,
    seq: u32,
}

impl NftNetlink {
    /// Opens the socket, inside the named network namespace if given.
    pub fn open(netns: Option<&str>) -> io::Result<Self> {
        let socket = in_netns(netns, || NetlinkSocket::open(consts::NETLINK_NETFILTER))??;
        socket.set_receive_timeout(ANSWER_TIMEOUT)?;
        socket.cap_acks()?;
        Ok(NftNetlink { socket, seq: 0 })
    }

    /// Sends `tx` as one batch and waits for the kernel's answer.
    pub fn apply(&mut self, tx: &Transaction) -> Result<(), NetlinkApplyError> {
        let prepared = self.prepare(tx)?;
        self.send(tx, prepared)
    }

    /// Encodes `tx`'s commands (after its skeleton, if any), before anything is applied:
    /// a transaction without a netlink form is known before its skeleton goes to `nft`.
    pub fn prepare(&mut self, tx: &Transaction) -> Result<Prepared, Unsupported> {
        let commands = tx.commands().ok_or_else(|| Unsupported("a command without a netlink form".into()))?;
        let base = self.seq.wrapping_add(1);
        self.seq = base.wrapping_add(commands.len() as u32 + 1);
        if commands.is_empty() {
            return Ok(Prepared { bytes: Vec::new(), base, last: base, commands: 0 });
        }
        let Batch { mut bytes, messages: count, last_seq: last } = batch(commands, tx.family(), base)?;
        ack_last_command(&mut bytes, count);
        Ok(Prepared { bytes, base, last, commands: commands.len() })
    }

    /// Sends a batch [`Self::prepare`] made of `tx` and waits for the kernel's answer.
    pub fn send(&mut self, tx: &Transaction, prepared: Prepared) -> Result<(), NetlinkApplyError> {
        let Prepared { bytes, base, last, commands } = prepared;
        if commands == 0 {
            return Ok(());
        }
        if bytes.len() > 128 * 1024 {
            self.socket.reserve_send_buffer(bytes.len() * 2).map_err(NetlinkApplyError::Io)?;
        }
        self.drain_stale().map_err(NetlinkApplyError::Io)?;
        self.socket.send(&bytes).map_err(NetlinkApplyError::Io)?;
        let line = |seq: u32| {
            let index = seq.wrapping_sub(base.wrapping_add(1)) as usize;
            tx.after_skeleton().lines().nth(index).unwrap_or("the batch").to_string()
        };
        // The kernel handles the batch inside sendmsg, so its answers are
        // queued by now: errors in batch order, the last command's ACK (or
        // error) last. The receive timeout is only a safety net.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv_answer(&mut buf).map_err(NetlinkApplyError::Io)?;
            let msgs = messages(&buf[..n]).map_err(|m| NetlinkApplyError::Io(io::Error::other(m)))?;
            for m in msgs {
                let Some((errno, seq)) = m.error() else {
                    continue;
                };
                if seq.wrapping_sub(base) > commands as u32 + 1 {
                    continue; // an answer to an earlier batch
                }
                if errno != 0 {
                    return Err(NetlinkApplyError::Rejected { command: line(seq), source: io::Error::from_raw_os_error(errno) });
                }
                if seq == last {
                    return Ok(());
                }
            }
        }
    }

    /// Waits for the kernel's next answer; its silence for [`ANSWER_TIMEOUT`] is `TimedOut`.
    fn recv_answer(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf, true).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::TimedOut, format!("no answer from the kernel within {ANSWER_TIMEOUT:?}"))
            } else {
                e
            }
        })
    }

    /// Discards answers left over from an earlier, failed batch.
    fn drain_stale(&self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        while self.socket.recv(&mut buf, false)? > 0 {}
        Ok(())
    }
}

/// Sets `NLM_F_ACK` on the last message before `BATCH_END` (after
/// `BATCH_BEGIN` and `messages - 1` others), so success has an answer too.
fn ack_last_command(bytes: &mut [u8], messages: usize) {
    let mut offset = 0;
    for _ in 0..messages {
        let len = u32::from_ne_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"));
        offset += (len as usize + 3) & !3;
    }
    let flags = u16::from_ne_bytes([bytes[offset + 6], bytes[offset + 7]]) | NLM_F_ACK;
    bytes[offset + 6..offset + 8].copy_from_slice(&flags.to_ne_bytes());
}

#[cfg(test)]
mod tests;
