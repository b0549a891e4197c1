//! A sync's [`Command`]s (a partial sync's, or a full sync's after its
//! skeleton) as one nf_tables batch: `BATCH_BEGIN`, one message per command
//! or run of elements (sequence numbers `seq + 1 + index`), `BATCH_END`.
//! The kernel applies the batch atomically, like `nft -f`. Map element keys
//! and values arrive in nft syntax (`198.19.0.1 . tcp . 80`, `goto CHAIN`,
//! an endpoint map's `16777216 : 10.0.0.1 . 80`) and are encoded here. Pure.

use std::net::IpAddr;

use super::consts::*;
use super::expr::{Unsupported, comment_tlv, ip_bytes, rule_expressions, verdict_data};
use super::udata;
use crate::applier::netlink::{NLM_F_REQUEST, attr, header, nested};
use crate::net::IpFamily;
use crate::nftables::slots::map_index;
use crate::nftables::tx::{ENDPOINT_MAP_COMMENT, TABLE};
use crate::nftables::{Command, Verdict};
use crate::service::Protocol;

pub(super) fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// `struct nfgenmsg` + attributes, as one message.
pub(super) fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) {
    header(out, 4 + attrs.len(), kind, flags, seq);
    out.push(family);
    out.push(0); // NFNETLINK_V0
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
}

/// The bytes of one element key: each field of a concatenation padded to 4 bytes.
pub fn element_key(key: &str) -> Result<Vec<u8>, Unsupported> {
    let mut out = Vec::new();
    for part in key.split(" . ") {
        let part = part.trim();
        let mut bytes = if let Ok(ip) = part.parse::<IpAddr>() {
            ip_bytes(&ip)
        } else if let Some(p) = Protocol::parse(Some(&part.to_ascii_uppercase())) {
            vec![p.number()]
        } else if let Ok(port) = part.parse::<u16>() {
            port.to_be_bytes().to_vec()
        } else {
            return Err(Unsupported(format!("element key {key:?}")));
        };
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// A verdict map value: `goto C`, `jump C`, `drop`, `return`.
pub fn element_verdict(value: &str) -> Result<Verdict, Unsupported> {
    let mut words = value.split_whitespace();
    let v = match (words.next(), words.next(), words.next()) {
        (Some("goto"), Some(c), None) => Verdict::Goto(c.to_string()),
        (Some("jump"), Some(c), None) => Verdict::Jump(c.to_string()),
        (Some("drop"), None, None) => Verdict::Drop,
        (Some("return"), None, None) => Verdict::Return,
        _ => return Err(Unsupported(format!("element value {value:?}"))),
    };
    Ok(v)
}

/// One `NFTA_LIST_ELEM` of `container`'s element list.
fn element_entry(container: &str, key: &str, value: Option<&str>, comment: Option<&str>) -> Result<Vec<u8>, Unsupported> {
    // An endpoint map's key is a host-order `numgen` value and its value
    // data (`address . port`); every other map's value is a verdict.
    let endpoint_map = map_index(container).is_some();
    let key_bytes = if endpoint_map {
        key.parse::<u32>().map_err(|_| Unsupported(format!("endpoint map key {key:?}")))?.to_ne_bytes().to_vec()
    } else {
        element_key(key)?
    };
    let mut e = Vec::new();
    let mut k = Vec::new();
    attr(&mut k, NFTA_DATA_VALUE, &key_bytes);
    nested(&mut e, NFTA_SET_ELEM_KEY, &k);
    if let Some(v) = value {
        let data = if endpoint_map {
            let mut d = Vec::new();
            attr(&mut d, NFTA_DATA_VALUE, &element_key(v)?);
            d
        } else {
            verdict_data(&element_verdict(v)?)
        };
        nested(&mut e, NFTA_SET_ELEM_DATA, &data);
    }
    if let Some(c) = comment {
        attr(&mut e, NFTA_SET_ELEM_USERDATA, &comment_tlv(c)?);
    }
    let mut entry = Vec::new();
    nested(&mut entry, NFTA_LIST_ELEM, &e);
    Ok(entry)
}

/// `NFTA_SET_ELEM_LIST_*`: the entries (`NFTA_LIST_ELEM`s, concatenated) of one message.
fn element_list(container: &str, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() + 64);
    attr(&mut out, NFTA_SET_ELEM_LIST_TABLE, &cstr(TABLE));
    attr(&mut out, NFTA_SET_ELEM_LIST_SET, &cstr(container));
    nested(&mut out, NFTA_SET_ELEM_LIST_ELEMENTS, entries);
    out
}

/// nft's data type of an address of `family`, and its length in bytes.
fn address_type(family: IpFamily) -> (u32, u32) {
    match family {
        IpFamily::V4 => (TYPE_IPV4_ADDR, 4),
        IpFamily::V6 => (TYPE_IPV6_ADDR, 16),
    }
}

/// `(message type, extra flags, attributes)` of one command.
fn command(c: &Command, family: IpFamily, set_id: &mut u32) -> Result<(u16, u16, Vec<u8>), Unsupported> {
    let table = cstr(TABLE);
    let mut a = Vec::new();
    let out = match c {
        Command::AddChain(name) => {
            attr(&mut a, NFTA_CHAIN_TABLE, &table);
            attr(&mut a, NFTA_CHAIN_NAME, &cstr(name));
            (NFT_MSG_NEWCHAIN, NLM_F_CREATE, a)
        }
        Command::DeleteChain(name) => {
            attr(&mut a, NFTA_CHAIN_TABLE, &table);
            attr(&mut a, NFTA_CHAIN_NAME, &cstr(name));
            (NFT_MSG_DELCHAIN, 0, a)
        }
        Command::FlushChain(name) => {
            attr(&mut a, NFTA_RULE_TABLE, &table);
            attr(&mut a, NFTA_RULE_CHAIN, &cstr(name));
            (NFT_MSG_DELRULE, 0, a)
        }
        Command::AddRule { chain, rule } => {
            attr(&mut a, NFTA_RULE_TABLE, &table);
            attr(&mut a, NFTA_RULE_CHAIN, &cstr(chain));
            nested(&mut a, NFTA_RULE_EXPRESSIONS, &rule_expressions(rule)?);
            if let Some(c) = rule.comment {
                attr(&mut a, NFTA_RULE_USERDATA, &comment_tlv(c)?);
            }
            (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, a)
        }
        Command::AddAffinitySet { name, timeout_secs } => {
            let (kind, len) = address_type(family);
            *set_id += 1;
            attr(&mut a, NFTA_SET_TABLE, &table);
            attr(&mut a, NFTA_SET_NAME, &cstr(name));
            attr(&mut a, NFTA_SET_FLAGS, &(NFT_SET_TIMEOUT | NFT_SET_EVAL).to_be_bytes());
            attr(&mut a, NFTA_SET_KEY_TYPE, &kind.to_be_bytes());
            attr(&mut a, NFTA_SET_KEY_LEN, &len.to_be_bytes());
            attr(&mut a, NFTA_SET_ID, &set_id.to_be_bytes());
            let ms = u64::from(*timeout_secs) * 1000;
            attr(&mut a, NFTA_SET_TIMEOUT, &ms.to_be_bytes());
            // nft's user data: the key is big-endian (BYTEORDER_BIG_ENDIAN = 2).
            attr(&mut a, NFTA_SET_USERDATA, &[0, 4, 2, 0, 0, 0]);
            (NFT_MSG_NEWSET, NLM_F_CREATE, a)
        }
        Command::AddEndpointMap { name, protocol } => {
            let (addr, addr_len) = address_type(family);
            *set_id += 1;
            attr(&mut a, NFTA_SET_TABLE, &table);
            attr(&mut a, NFTA_SET_NAME, &cstr(name));
            attr(&mut a, NFTA_SET_FLAGS, &NFT_SET_MAP.to_be_bytes());
            attr(&mut a, NFTA_SET_KEY_TYPE, &TYPE_INTEGER.to_be_bytes());
            attr(&mut a, NFTA_SET_KEY_LEN, &4u32.to_be_bytes());
            let data_type = (addr << CONCAT_TYPE_BITS) | TYPE_INET_SERVICE;
            attr(&mut a, NFTA_SET_DATA_TYPE, &data_type.to_be_bytes());
            // The address, then the port padded to 4 bytes.
            attr(&mut a, NFTA_SET_DATA_LEN, &(addr_len + 4).to_be_bytes());
            attr(&mut a, NFTA_SET_ID, &set_id.to_be_bytes());
            let udata = udata::endpoint_map(family, *protocol, ENDPOINT_MAP_COMMENT);
            attr(&mut a, NFTA_SET_USERDATA, &udata);
            (NFT_MSG_NEWSET, NLM_F_CREATE, a)
        }
        Command::DeleteSet(name) => {
            attr(&mut a, NFTA_SET_TABLE, &table);
            attr(&mut a, NFTA_SET_NAME, &cstr(name));
            (NFT_MSG_DELSET, 0, a)
        }
        Command::FlushSet(name) => {
            // A `DELSETELEM` without elements empties the set.
            attr(&mut a, NFTA_SET_ELEM_LIST_TABLE, &table);
            attr(&mut a, NFTA_SET_ELEM_LIST_SET, &cstr(name));
            (NFT_MSG_DELSETELEM, 0, a)
        }
        Command::AddElement { .. } | Command::DeleteElement { .. } => {
            // [`batch`] groups these; one on its own is a message of one element.
            let e = element_command(c)?.ok_or_else(|| Unsupported("an element command".into()))?;
            (e.kind, element_flags(e.kind), element_list(e.container, &e.entry))
        }
    };
    Ok(out)
}

/// One element command, encoded.
struct ElementPart<'a> {
    /// `NFT_MSG_NEWSETELEM` or `NFT_MSG_DELSETELEM`.
    kind: u16,
    container: &'a str,
    /// Its `NFTA_LIST_ELEM`.
    entry: Vec<u8>,
}

/// An element command's part of a message; `None` for other commands.
fn element_command(c: &Command) -> Result<Option<ElementPart<'_>>, Unsupported> {
    Ok(match c {
        Command::AddElement { container, key, value, comment } => Some(ElementPart {
            kind: NFT_MSG_NEWSETELEM,
            container,
            entry: element_entry(container, key, value.as_deref(), comment.as_deref())?,
        }),
        Command::DeleteElement { container, key } => {
            Some(ElementPart { kind: NFT_MSG_DELSETELEM, container, entry: element_entry(container, key, None, None)? })
        }
        _ => None,
    })
}

/// The extra flags of an element message of type `kind`.
fn element_flags(kind: u16) -> u16 {
    if kind == NFT_MSG_NEWSETELEM { NLM_F_CREATE } else { 0 }
}

/// The most element bytes one message carries: `NFTA_SET_ELEM_LIST_ELEMENTS`'s
/// length is 16 bits.
const MAX_ELEMENT_BYTES: usize = 60 * 1024;

/// An encoded batch.
#[derive(Debug)]
pub struct Batch {
    /// `BATCH_BEGIN`, the messages, `BATCH_END`.
    pub bytes: Vec<u8>,
    /// Messages between `BATCH_BEGIN` and `BATCH_END`.
    pub messages: usize,
    /// The last of those messages' sequence number.
    pub last_seq: u32,
}

/// The elements of the element commands being grouped into one message.
struct ElementGroup<'a> {
    kind: u16,
    container: &'a str,
    first: usize,
    entries: Vec<u8>,
}

/// Appends a batch's messages.
struct Writer {
    out: Vec<u8>,
    seq: u32,
    nf_family: u8,
    messages: usize,
    last_seq: u32,
}

impl Writer {
    /// One message for command `index` (the first of a group).
    fn emit(&mut self, index: usize, kind: u16, flags: u16, attrs: &[u8]) {
        let seq = self.seq.wrapping_add(1 + index as u32);
        message(&mut self.out, (NFNL_SUBSYS_NFTABLES << 8) | kind, NLM_F_REQUEST | flags, seq, self.nf_family, 0, attrs);
        self.messages += 1;
        self.last_seq = seq;
    }

    fn flush(&mut self, group: Option<ElementGroup<'_>>) {
        if let Some(g) = group {
            self.emit(g.first, g.kind, element_flags(g.kind), &element_list(g.container, &g.entries));
        }
    }
}

/// The whole batch. A message's sequence number is `seq + 1 + i`, `i` the index of its
/// (first) command: consecutive element additions (or deletions) of one set or map share
/// a message, as `nft` sends them, so the kernel handles thousands of elements as a few
/// messages.
pub fn batch(commands: &[Command], family: IpFamily, seq: u32) -> Result<Batch, Unsupported> {
    let nf_family = match family {
        IpFamily::V4 => NFPROTO_IPV4 as u8,
        IpFamily::V6 => NFPROTO_IPV6 as u8,
    };
    let mut w = Writer { out: Vec::new(), seq, nf_family, messages: 0, last_seq: seq };
    message(&mut w.out, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, &[]);
    let mut group: Option<ElementGroup<'_>> = None;
    let mut set_id = 0;
    for (i, c) in commands.iter().enumerate() {
        match element_command(c)? {
            Some(ElementPart { kind, container, entry }) => {
                let joins = group
                    .as_ref()
                    .is_some_and(|g| g.kind == kind && g.container == container && g.entries.len() + entry.len() <= MAX_ELEMENT_BYTES);
                if !joins {
                    w.flush(group.take());
                    group = Some(ElementGroup { kind, container, first: i, entries: Vec::new() });
                }
                group.as_mut().expect("a group").entries.extend_from_slice(&entry);
            }
            None => {
                w.flush(group.take());
                let (kind, flags, attrs) = command(c, family, &mut set_id)?;
                w.emit(i, kind, flags, &attrs);
            }
        }
    }
    w.flush(group.take());
    let end = seq.wrapping_add(1 + commands.len() as u32);
    message(&mut w.out, NFNL_MSG_BATCH_END, NLM_F_REQUEST, end, 0, NFNL_SUBSYS_NFTABLES, &[]);
    Ok(Batch { bytes: w.out, messages: w.messages, last_seq: w.last_seq })
}
