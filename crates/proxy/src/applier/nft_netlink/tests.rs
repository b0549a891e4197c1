//! Encoding checks without a kernel; `crates/proxy/tests/nft_netlink.rs`
//! checks that the kernel and `nft` read the result back as the same rules.

use super::consts::*;
use super::*;
use crate::applier::netlink::{attrs, get, messages};
use crate::net::IpFamily;
use crate::nftables::{AddrOrCidr, Direction, Match, Rule, Statement, Verdict};
use crate::service::Protocol;

/// An expression's data attributes.
type ExprData = Vec<(u16, Vec<u8>)>;

/// `(expression name, its data attributes)` in order.
fn exprs(list: &[u8]) -> Vec<(String, ExprData)> {
    attrs(list)
        .into_iter()
        .map(|(_, e)| {
            let a = attrs(e);
            let name = get(&a, NFTA_EXPR_NAME).unwrap();
            let name = String::from_utf8(name[..name.len() - 1].to_vec()).unwrap();
            let data = attrs(get(&a, NFTA_EXPR_DATA).unwrap()).into_iter().map(|(k, v)| (k, v.to_vec())).collect();
            (name, data)
        })
        .collect()
}

fn names(rule: &Rule) -> Vec<String> {
    exprs(&rule_expressions(rule).unwrap()).into_iter().map(|(n, _)| n).collect()
}

fn saddr(negate: bool, v: &str) -> Match {
    let value = match v.parse() {
        Ok(ip) => AddrOrCidr::Addr(ip),
        Err(_) => AddrOrCidr::Cidr(v.parse().unwrap()),
    };
    Match::Addr { family: IpFamily::V4, dir: Direction::Source, negate, value }
}

#[test]
fn rules_become_nfts_expressions() {
    let goto = Statement::Verdict(Verdict::Goto("c".into()));
    let r = Rule::new(vec![saddr(false, "10.0.0.0/8")], goto.clone());
    assert_eq!(names(&r), ["payload", "cmp", "immediate"]);
    let e = exprs(&rule_expressions(&r).unwrap());
    // A byte-aligned prefix loads one byte at offset 12 and compares it.
    assert!(e[0].1.contains(&(NFTA_PAYLOAD_OFFSET, 12u32.to_be_bytes().to_vec())));
    assert!(e[0].1.contains(&(NFTA_PAYLOAD_LEN, 1u32.to_be_bytes().to_vec())));
    let r = Rule::new(vec![saddr(true, "10.1.2.0/23")], goto.clone());
    assert_eq!(names(&r), ["payload", "bitwise", "cmp", "immediate"]);
    let e = exprs(&rule_expressions(&r).unwrap());
    let mask = attrs(&e[1].1.iter().find(|(k, _)| *k == NFTA_BITWISE_MASK).unwrap().1)[0].1.to_vec();
    assert_eq!(mask, [255, 255, 254, 0]);
    let cmp = &e[2].1;
    assert!(cmp.contains(&(NFTA_CMP_OP, NFT_CMP_NEQ.to_be_bytes().to_vec())));
    let r = Rule::new(vec![Match::L4Proto(Protocol::Udp)], Statement::Dnat("10.1.2.3:53".parse().unwrap()));
    assert_eq!(names(&r), ["meta", "cmp", "immediate", "immediate", "nat"]);
    let r = Rule::new(vec![Match::RandomOneIn(3)], goto.clone());
    assert_eq!(names(&r), ["numgen", "cmp", "immediate"]);
    let r = Rule::new(vec![Match::FibSourceLocal], goto.clone()).with_comment("x");
    assert_eq!(names(&r), ["fib", "cmp", "immediate"]);
    let r = Rule::new(vec![Match::SourceInSet { family: IpFamily::V6, set: "a".into() }], goto);
    assert_eq!(names(&r), ["payload", "lookup", "immediate"]);
    let r = Rule::new(Vec::new(), Statement::UpdateSourceInSet { family: IpFamily::V4, set: "a".into() });
    assert_eq!(names(&r), ["payload", "dynset"]);
    let exact = Match::Iifname { negate: true, name: "knode0".into(), prefix: false };
    let e = exprs(&rule_expressions(&Rule::verdict_after(exact)).unwrap());
    let data = &e[1].1.iter().find(|(k, _)| *k == NFTA_CMP_DATA).unwrap().1;
    assert_eq!(attrs(data)[0].1.len(), 16, "an exact name compares IFNAMSIZ bytes");
    let prefix = Match::Iifname { negate: false, name: "veth".into(), prefix: true };
    let e = exprs(&rule_expressions(&Rule::verdict_after(prefix)).unwrap());
    let data = &e[1].1.iter().find(|(k, _)| *k == NFTA_CMP_DATA).unwrap().1;
    assert_eq!(attrs(data)[0].1, b"veth");
}

impl Rule {
    fn verdict_after(m: Match) -> Rule {
        Rule::new(vec![m], Statement::Verdict(Verdict::Drop))
    }
}

#[test]
fn what_cannot_be_encoded_says_so() {
    let r = Rule::new(vec![saddr(false, "0.0.0.0/0")], Statement::Verdict(Verdict::Drop));
    assert!(rule_expressions(&r).is_err());
    let long = Match::Iifname { negate: false, name: "a-very-long-interface".into(), prefix: false };
    assert!(rule_expressions(&Rule::verdict_after(long)).is_err());
    assert!(element_key("198.19.0.1 . icmp . 80").is_err());
    assert!(element_verdict("accept later").is_err());
}

#[test]
fn element_keys_pad_each_field() {
    assert_eq!(element_key("198.19.0.1 . tcp . 80").unwrap(), [198, 19, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0]);
    assert_eq!(element_key("udp . 30080").unwrap(), [17, 0, 0, 0, 0x75, 0x80, 0, 0]);
    assert_eq!(element_key("198.19.0.1").unwrap(), [198, 19, 0, 1]);
    assert_eq!(element_key("fd00::1 . sctp . 80").unwrap().len(), 24);
    assert_eq!(element_verdict("goto service-x").unwrap(), Verdict::Goto("service-x".into()));
    assert_eq!(element_verdict("drop").unwrap(), Verdict::Drop);
}

#[test]
fn a_batch_frames_every_command() {
    let mut tx = Transaction::new(IpFamily::V4);
    tx.add_chain("c");
    tx.flush_chain("c");
    tx.add_service_rule("c", &Rule::verdict(Verdict::Drop));
    tx.add_element("service-ips", "198.19.0.1 . tcp . 80", Some("goto c"), None);
    tx.delete_element("cluster-ips", "198.19.0.2");
    tx.add_affinity_set("a", 10800);
    tx.delete_set("a");
    tx.delete_chain("c");
    let cmds = tx.commands().unwrap();
    let Batch { mut bytes, messages: n, last_seq } = batch(cmds, IpFamily::V4, 100).unwrap();
    assert_eq!((n, last_seq), (cmds.len(), 108));
    ack_last_command(&mut bytes, n);
    let msgs = messages(&bytes).unwrap();
    assert_eq!(msgs.len(), cmds.len() + 2);
    let kinds: Vec<u16> = msgs.iter().map(|m| m.kind & 0xff).collect();
    assert_eq!(
        kinds,
        [
            NFNL_MSG_BATCH_BEGIN,
            NFT_MSG_NEWCHAIN,
            NFT_MSG_DELRULE,
            NFT_MSG_NEWRULE,
            NFT_MSG_NEWSETELEM,
            NFT_MSG_DELSETELEM,
            NFT_MSG_NEWSET,
            NFT_MSG_DELSET,
            NFT_MSG_DELCHAIN,
            NFNL_MSG_BATCH_END
        ]
    );
    let seqs: Vec<u32> = msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (100..110).collect::<Vec<_>>());
    let flags = |i: usize| {
        let mut off = 0;
        for m in &msgs[..i] {
            off += (16 + m.body.len() + 3) & !3;
        }
        u16::from_ne_bytes([bytes[off + 6], bytes[off + 7]])
    };
    assert_ne!(flags(8) & crate::applier::netlink::NLM_F_ACK, 0);
    assert_eq!(flags(7) & crate::applier::netlink::NLM_F_ACK, 0);
    // A text-only transaction has no netlink form.
    let mut text = Transaction::new(IpFamily::V4);
    text.add_rule("c", "ct state invalid drop");
    assert!(text.commands().is_none());
}

#[test]
fn consecutive_elements_of_one_set_share_a_message() {
    let mut tx = Transaction::new(IpFamily::V4);
    for i in 1..=3 {
        tx.add_element("cluster-ips", &format!("198.19.0.{i}"), None, None);
    }
    tx.add_element("service-ips", "198.19.0.1 . tcp . 80", Some("goto c"), None);
    tx.delete_element("service-ips", "198.19.0.2 . tcp . 80");
    tx.delete_element("service-ips", "198.19.0.3 . tcp . 80");
    tx.add_chain("c");
    let cmds = tx.commands().unwrap();
    let b = batch(cmds, IpFamily::V4, 100).unwrap();
    let msgs = messages(&b.bytes).unwrap();
    let seqs: Vec<u32> = msgs.iter().map(|m| m.seq).collect();
    // BEGIN, 3 cluster-ips elements, 1 service-ips addition, 2 deletions, the chain, END.
    assert_eq!(seqs, [100, 101, 104, 105, 107, 108]);
    assert_eq!((b.messages, b.last_seq), (4, 107));
    let kinds: Vec<u16> = msgs.iter().map(|m| m.kind & 0xff).collect();
    assert_eq!(kinds[1..5], [NFT_MSG_NEWSETELEM, NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM, NFT_MSG_NEWCHAIN]);
    // Every address of the group is in its one message.
    for i in 1..=3u8 {
        assert!(msgs[1].body.windows(4).any(|w| w == [198, 19, 0, i]), "element {i}");
    }
}

#[test]
fn a_group_is_split_before_its_element_list_outgrows_16_bits() {
    let mut tx = Transaction::new(IpFamily::V4);
    for i in 0..10_000u32 {
        tx.add_element("cluster-ips", &std::net::Ipv4Addr::from(0xc613_0000 + i).to_string(), None, None);
    }
    let b = batch(tx.commands().unwrap(), IpFamily::V4, 0).unwrap();
    assert!(b.messages > 1);
    let msgs = messages(&b.bytes).unwrap();
    assert!(msgs.iter().all(|m| m.body.len() < 65_535));
    assert_eq!(msgs.len(), b.messages + 2);
}
