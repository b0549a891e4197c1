//! What table `kube-proxy` holds, read over netlink: whether it exists, and
//! the names of its chains and of its sets and maps (a full sync after a
//! restart removes what an earlier process left). `nft -j list chains` would
//! read the whole table into `nft`'s cache first; a dump of chains or sets
//! carries only their headers.

use std::io;

use super::NftNetlink;
use super::consts::*;
use super::encode::{cstr, message};
use crate::applier::netlink::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_DONE, attrs, get, messages};
use crate::nftables::tx::TABLE;

/// A dumped object's name, if it belongs to table `kube-proxy`.
fn name_in_table(body: &[u8], table_attr: u16, name_attr: u16) -> Option<String> {
    // The body starts with `struct nfgenmsg` (4 bytes).
    let list = attrs(body.get(4..)?);
    let table = get(&list, table_attr)?;
    if table.strip_suffix(&[0]).unwrap_or(table) != TABLE.as_bytes() {
        return None;
    }
    let name = get(&list, name_attr)?;
    Some(String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(name)).into_owned())
}

impl NftNetlink {
    /// Sends one request and collects the answers: the bodies of messages of type
    /// `answer` until the dump's end or the request's ACK; `Ok(None)` when the kernel
    /// answers `ENOENT`.
    fn request(&mut self, kind: u16, flags: u16, nf_family: u8, attrs: &[u8], answer: u16) -> io::Result<Option<Vec<Vec<u8>>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::new();
        message(&mut msg, (NFNL_SUBSYS_NFTABLES << 8) | kind, NLM_F_REQUEST | flags, seq, nf_family, 0, attrs);
        self.drain_stale()?;
        self.socket.send(&msg)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv_answer(&mut buf)?;
            for m in messages(&buf[..n]).map_err(io::Error::other)? {
                if m.seq != seq {
                    continue;
                }
                if let Some((errno, _)) = m.error() {
                    return match errno {
                        0 => Ok(Some(out)),
                        libc::ENOENT => Ok(None),
                        e => Err(io::Error::from_raw_os_error(e)),
                    };
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    // The table changed during the dump: the listing may miss objects.
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "the table changed during the dump"));
                }
                if m.kind == NLMSG_DONE {
                    let code = m.body.get(..4).map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                    return if code == 0 { Ok(Some(out)) } else { Err(io::Error::from_raw_os_error(-code)) };
                }
                if m.kind == (NFNL_SUBSYS_NFTABLES << 8) | answer {
                    out.push(m.body.to_vec());
                }
            }
        }
    }

    /// `(chains, sets and maps)` of table `kube-proxy` of `nf_family`; both empty when
    /// the table does not exist.
    pub fn table_objects(&mut self, nf_family: u8) -> io::Result<(Vec<String>, Vec<String>)> {
        let mut name = Vec::new();
        crate::applier::netlink::attr(&mut name, NFTA_TABLE_NAME, &cstr(TABLE));
        if self.request(NFT_MSG_GETTABLE, NLM_F_ACK, nf_family, &name, NFT_MSG_NEWTABLE)?.is_none() {
            return Ok((Vec::new(), Vec::new()));
        }
        let dump = |me: &mut Self, kind: u16, answer: u16, table_attr: u16, name_attr: u16| -> io::Result<Vec<String>> {
            let bodies = me.request(kind, NLM_F_DUMP, nf_family, &[], answer)?.unwrap_or_default();
            Ok(bodies.iter().filter_map(|b| name_in_table(b, table_attr, name_attr)).collect())
        };
        let chains = dump(self, NFT_MSG_GETCHAIN, NFT_MSG_NEWCHAIN, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME)?;
        let sets = dump(self, NFT_MSG_GETSET, NFT_MSG_NEWSET, NFTA_SET_TABLE, NFTA_SET_NAME)?;
        Ok((chains, sets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applier::netlink::attr;

    fn body(table: &str, name: &str) -> Vec<u8> {
        let mut b = vec![2, 0, 0, 0];
        attr(&mut b, NFTA_CHAIN_TABLE, &cstr(table));
        attr(&mut b, NFTA_CHAIN_NAME, &cstr(name));
        b
    }

    #[test]
    fn only_kube_proxy_objects_are_named() {
        assert_eq!(name_in_table(&body("kube-proxy", "services"), NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME).as_deref(), Some("services"));
        assert_eq!(name_in_table(&body("nat", "POSTROUTING"), NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME), None);
        assert_eq!(name_in_table(&[2, 0], NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME), None, "a short body is no object");
    }
}
