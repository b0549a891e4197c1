//! A per-Service [`Rule`] as nf_tables expressions (`NFTA_RULE_EXPRESSIONS`),
//! the same ones `nft` generates for the rule's text (checked with
//! `nft --debug=netlink`): a `payload`/`meta`/`fib`/`numgen` load into
//! register 1 and a `cmp`, then `immediate`, `lookup`, `dynset` or `nat`
//! (after `numgen` and a map `lookup` for [`Statement::DnatFromMap`]).
//! Pure; [`Unsupported`] for what this encoder does not know, so the
//! caller can let `nft` do it instead.

use std::net::{IpAddr, SocketAddr};

use super::consts::*;
use crate::applier::netlink::{attr, nested};
use crate::net::IpFamily;
use crate::nftables::{AddrOrCidr, Direction, Match, Rule, Statement, Verdict};

/// A rule, element or value this encoder cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode for netlink: {0}")]
pub struct Unsupported(pub String);

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// Appends one `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }`.
fn expr(list: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut e = Vec::new();
    attr(&mut e, NFTA_EXPR_NAME, format!("{name}\0").as_bytes());
    nested(&mut e, NFTA_EXPR_DATA, data);
    nested(list, NFTA_LIST_ELEM, &e);
}

fn value(kind: u16, bytes: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    attr(&mut d, NFTA_DATA_VALUE, bytes);
    let mut out = Vec::new();
    nested(&mut out, kind, &d);
    out
}

fn load_network(list: &mut Vec<u8>, offset: u32, len: u32) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_PAYLOAD_DREG, &be32(NFT_REG_1));
    attr(&mut d, NFTA_PAYLOAD_BASE, &be32(NFT_PAYLOAD_NETWORK_HEADER));
    attr(&mut d, NFTA_PAYLOAD_OFFSET, &be32(offset));
    attr(&mut d, NFTA_PAYLOAD_LEN, &be32(len));
    expr(list, "payload", &d);
}

fn cmp(list: &mut Vec<u8>, negate: bool, bytes: &[u8]) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_CMP_SREG, &be32(NFT_REG_1));
    let op = if negate { NFT_CMP_NEQ } else { NFT_CMP_EQ };
    attr(&mut d, NFTA_CMP_OP, &be32(op));
    d.extend_from_slice(&value(NFTA_CMP_DATA, bytes));
    expr(list, "cmp", &d);
}

fn meta(list: &mut Vec<u8>, key: u32) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_META_DREG, &be32(NFT_REG_1));
    attr(&mut d, NFTA_META_KEY, &be32(key));
    expr(list, "meta", &d);
}

/// Offset of the source/destination address in the IPv4 or IPv6 header.
fn addr_offset(family: IpFamily, dir: Direction) -> u32 {
    match (family, dir) {
        (IpFamily::V4, Direction::Source) => 12,
        (IpFamily::V4, Direction::Destination) => 16,
        (IpFamily::V6, Direction::Source) => 8,
        (IpFamily::V6, Direction::Destination) => 24,
    }
}

pub(super) fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `ip saddr 10.0.0.0/8`: a byte-aligned prefix loads only its bytes (as
/// nft does); any other prefix loads the address and masks it.
fn addr_match(list: &mut Vec<u8>, family: IpFamily, dir: Direction, negate: bool, v: &AddrOrCidr) -> Result<(), Unsupported> {
    let (ip, prefix) = v.prefix();
    if IpFamily::of(&ip) != family || prefix == 0 {
        return Err(Unsupported(format!("address match on {v}")));
    }
    let bytes = ip_bytes(&ip);
    let full = bytes.len() as u32;
    let offset = addr_offset(family, dir);
    let prefix = u32::from(prefix);
    if prefix % 8 == 0 {
        let n = prefix / 8;
        load_network(list, offset, n);
        cmp(list, negate, &bytes[..n as usize]);
        return Ok(());
    }
    load_network(list, offset, full);
    let mask: Vec<u8> = (0..full)
        .map(|i| {
            let bits = prefix.saturating_sub(i * 8).min(8);
            (0xffu16 << (8 - bits)) as u8
        })
        .collect();
    let mut d = Vec::new();
    attr(&mut d, NFTA_BITWISE_SREG, &be32(NFT_REG_1));
    attr(&mut d, NFTA_BITWISE_DREG, &be32(NFT_REG_1));
    attr(&mut d, NFTA_BITWISE_LEN, &be32(full));
    d.extend_from_slice(&value(NFTA_BITWISE_MASK, &mask));
    d.extend_from_slice(&value(NFTA_BITWISE_XOR, &vec![0; full as usize]));
    expr(list, "bitwise", &d);
    let masked: Vec<u8> = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
    cmp(list, negate, &masked);
    Ok(())
}

fn encode_match(list: &mut Vec<u8>, m: &Match) -> Result<(), Unsupported> {
    match m {
        Match::Addr { family, dir, negate, value } => addr_match(list, *family, *dir, *negate, value)?,
        Match::SourceInSet { family, set } => {
            let ip_len = if *family == IpFamily::V4 { 4 } else { 16 };
            load_network(list, addr_offset(*family, Direction::Source), ip_len);
            let mut d = Vec::new();
            attr(&mut d, NFTA_LOOKUP_SET, format!("{set}\0").as_bytes());
            attr(&mut d, NFTA_LOOKUP_SREG, &be32(NFT_REG_1));
            expr(list, "lookup", &d);
        }
        Match::Iifname { negate, name, prefix } => {
            // An exact name compares all IFNAMSIZ bytes (NUL-padded); a
            // prefix only its own bytes.
            if name.is_empty() || name.len() >= 16 {
                return Err(Unsupported(format!("interface name {name:?}")));
            }
            let mut bytes = name.as_bytes().to_vec();
            if !prefix {
                bytes.resize(16, 0);
            }
            meta(list, NFT_META_IIFNAME);
            cmp(list, *negate, &bytes);
        }
        Match::FibSourceLocal => {
            let mut d = Vec::new();
            attr(&mut d, NFTA_FIB_DREG, &be32(NFT_REG_1));
            attr(&mut d, NFTA_FIB_RESULT, &be32(NFT_FIB_RESULT_ADDRTYPE));
            attr(&mut d, NFTA_FIB_FLAGS, &be32(NFTA_FIB_F_SADDR));
            expr(list, "fib", &d);
            cmp(list, false, &RTN_LOCAL.to_ne_bytes());
        }
        Match::RandomOneIn(n) => {
            numgen_random(list, *n, 0);
            cmp(list, false, &0u32.to_ne_bytes());
        }
        Match::L4Proto(p) => {
            meta(list, NFT_META_L4PROTO);
            cmp(list, false, &[p.number()]);
        }
    }
    Ok(())
}

/// `NFTA_DATA_VERDICT { NFTA_VERDICT_CODE, [NFTA_VERDICT_CHAIN] }`.
pub(super) fn verdict_data(v: &Verdict) -> Vec<u8> {
    let (code, chain) = match v {
        Verdict::Jump(c) => (NFT_JUMP, Some(c)),
        Verdict::Goto(c) => (NFT_GOTO, Some(c)),
        Verdict::Drop => (NF_DROP, None),
        Verdict::Return => (NFT_RETURN, None),
    };
    let mut v = Vec::new();
    attr(&mut v, NFTA_VERDICT_CODE, &code.to_be_bytes());
    if let Some(c) = chain {
        attr(&mut v, NFTA_VERDICT_CHAIN, format!("{c}\0").as_bytes());
    }
    let mut out = Vec::new();
    nested(&mut out, NFTA_DATA_VERDICT, &v);
    out
}

/// `numgen random mod N offset O` into register 1.
fn numgen_random(list: &mut Vec<u8>, modulus: u32, offset: u32) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_NG_DREG, &be32(NFT_REG_1));
    attr(&mut d, NFTA_NG_MODULUS, &be32(modulus));
    attr(&mut d, NFTA_NG_TYPE, &be32(NFT_NG_RANDOM));
    attr(&mut d, NFTA_NG_OFFSET, &be32(offset));
    expr(list, "numgen", &d);
}

/// DNAT to the address in register 1 and the port in `port_reg`.
fn dnat(list: &mut Vec<u8>, nf_family: u32, port_reg: u32, flags: Option<u32>) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_NAT_TYPE, &be32(NFT_NAT_DNAT));
    attr(&mut d, NFTA_NAT_FAMILY, &be32(nf_family));
    attr(&mut d, NFTA_NAT_REG_ADDR_MIN, &be32(NFT_REG_1));
    attr(&mut d, NFTA_NAT_REG_PROTO_MIN, &be32(port_reg));
    if let Some(f) = flags {
        attr(&mut d, NFTA_NAT_FLAGS, &be32(f));
    }
    expr(list, "nat", &d);
}

fn immediate(list: &mut Vec<u8>, reg: u32, data: &[u8]) {
    let mut d = Vec::new();
    attr(&mut d, NFTA_IMMEDIATE_DREG, &be32(reg));
    nested(&mut d, NFTA_IMMEDIATE_DATA, data);
    expr(list, "immediate", &d);
}

fn encode_statement(list: &mut Vec<u8>, s: &Statement) {
    match s {
        Statement::Verdict(v) => immediate(list, NFT_REG_VERDICT, &verdict_data(v)),
        Statement::UpdateSourceInSet { family, set } => {
            let ip_len = if *family == IpFamily::V4 { 4 } else { 16 };
            load_network(list, addr_offset(*family, Direction::Source), ip_len);
            let mut d = Vec::new();
            attr(&mut d, NFTA_DYNSET_SET_NAME, format!("{set}\0").as_bytes());
            attr(&mut d, NFTA_DYNSET_OP, &be32(NFT_DYNSET_OP_UPDATE));
            attr(&mut d, NFTA_DYNSET_SREG_KEY, &be32(NFT_REG_1));
            expr(list, "dynset", &d);
        }
        Statement::Dnat(to) => {
            let (family, ip) = match to {
                SocketAddr::V4(a) => (NFPROTO_IPV4, IpAddr::V4(*a.ip())),
                SocketAddr::V6(a) => (NFPROTO_IPV6, IpAddr::V6(*a.ip())),
            };
            let mut a = Vec::new();
            attr(&mut a, NFTA_DATA_VALUE, &ip_bytes(&ip));
            immediate(list, NFT_REG_1, &a);
            let mut p = Vec::new();
            attr(&mut p, NFTA_DATA_VALUE, &to.port().to_be_bytes());
            immediate(list, NFT_REG_2, &p);
            dnat(list, family, NFT_REG_2, Some(NF_NAT_RANGE_PROTO_SPECIFIED));
        }
        Statement::DnatFromMap { family, modulus, offset, map } => {
            numgen_random(list, *modulus, *offset);
            let mut d = Vec::new();
            attr(&mut d, NFTA_LOOKUP_SET, format!("{map}\0").as_bytes());
            attr(&mut d, NFTA_LOOKUP_SREG, &be32(NFT_REG_1));
            attr(&mut d, NFTA_LOOKUP_DREG, &be32(NFT_REG_1));
            expr(list, "lookup", &d);
            // The port follows the address: 32-bit register 1 after an
            // IPv4 address, 128-bit register 2 after an IPv6 one (as nft).
            let (nf_family, port_reg) = match family {
                IpFamily::V4 => (NFPROTO_IPV4, NFT_REG32_01),
                IpFamily::V6 => (NFPROTO_IPV6, NFT_REG_2),
            };
            // nft sets no flags here (the kernel adds them for the registers).
            dnat(list, nf_family, port_reg, None);
        }
    }
}

/// The contents of `NFTA_RULE_EXPRESSIONS` for `rule`.
pub fn rule_expressions(rule: &Rule) -> Result<Vec<u8>, Unsupported> {
    let mut list = Vec::new();
    for m in &rule.matches {
        encode_match(&mut list, m)?;
    }
    encode_statement(&mut list, &rule.statement);
    Ok(list)
}

/// nft's user data TLV holding a comment (type 0, length with the NUL).
pub(super) fn comment_tlv(comment: &str) -> Result<Vec<u8>, Unsupported> {
    let len = u8::try_from(comment.len() + 1).map_err(|_| Unsupported(format!("comment of {} bytes", comment.len())))?;
    let mut out = vec![0, len];
    out.extend_from_slice(comment.as_bytes());
    out.push(0);
    Ok(out)
}
