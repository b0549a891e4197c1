//! End-to-end: nftables syncs sent over netlink (partial syncs whole, full
//! syncs after their `nft -f` skeleton) program exactly what `nft -f`
//! programs from the same transaction's text. Two network namespaces get the
//! same syncs — full, partial, a forced full sync over a filled table, a
//! restarted proxy's first — one through netlink and one through `nft`; the kernel's tables
//! (`nft -j list table`, handles dropped, set elements sorted) must be equal
//! after every step. Also: the kernel's refusal names the command and
//! applies nothing. Needs root (run by hack/test.sh); no traffic is sent.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proxy::IpFamily;
use proxy::app::backend::NftablesBackend;
use proxy::app::proxier::Proxier;
use proxy::applier::nft_netlink::{NetlinkApplyError, NftNetlink};
use proxy::applier::{ApplyCounts, NftApplier, RulesApplier};
use proxy::conntrack::ConntrackCli;
use proxy::nftables::rule::{AddrOrCidr, Direction, Match, Rule, Statement, Verdict};
use proxy::nftables::{LocalDetector, NftConfig, Transaction};
use proxy::service::Protocol;
use serde_json::{Value, json};
use support::Netns;
use test_support::proxy::{service, slice};

const NODE: &str = "node1";

/// Handles removed, set elements sorted, nft's version line dropped.
fn strip_handles(v: &mut Value) {
    fn normalize(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("handle");
                if let Some(Value::Array(elems)) = m.get_mut("elem") {
                    elems.sort_by_key(|e| e.to_string());
                }
                m.values_mut().for_each(normalize);
            }
            Value::Array(a) => a.iter_mut().for_each(normalize),
            _ => {}
        }
    }
    normalize(v);
    v["nftables"].as_array_mut().expect("nftables array").retain(|o| o.get("metainfo").is_none());
}

/// Table `ip kube-proxy` as JSON, normalized by [`strip_handles`].
fn table(ns: &Netns) -> Value {
    let text = ns.exec(&["nft", "-j", "list", "table", "ip", "kube-proxy"]);
    let mut v: Value = serde_json::from_str(&text).expect("nft -j output");
    strip_handles(&mut v);
    v
}

fn assert_same_tables(netlink: &Netns, nft: &Netns, step: &str) {
    let (a, b) = (table(netlink), table(nft));
    if a != b {
        let a = serde_json::to_string_pretty(&a).unwrap();
        let b = serde_json::to_string_pretty(&b).unwrap();
        let diff: Vec<String> =
            a.lines().zip(b.lines()).filter(|(x, y)| x != y).take(20).map(|(x, y)| format!("netlink: {x}\n    nft: {y}")).collect();
        panic!("{step}: the tables differ\n{}", diff.join("\n"));
    }
}

fn cfg(detector: LocalDetector) -> NftConfig {
    let mut cfg = NftConfig::new(IpFamily::V4, NODE);
    cfg.local_detector = detector;
    cfg.node_ip = Some("198.18.210.1".parse().unwrap());
    cfg
}

fn proxier(ns: &Netns, cfg: NftConfig, netlink: bool) -> Proxier {
    proxier_counted(ns, cfg, netlink).0
}

/// A proxier and its applier's counts (how many syncs went over netlink, how many fell
/// back to `nft`).
fn proxier_counted(ns: &Netns, cfg: NftConfig, netlink: bool) -> (Proxier, Arc<ApplyCounts>) {
    let applier = if netlink { NftApplier::new(Some(&ns.name)) } else { NftApplier::nft_only(Some(&ns.name)) };
    let counts = applier.counts();
    let p = Proxier::new(IpFamily::V4, Box::new(NftablesBackend::new(cfg)), Box::new(applier), Box::new(ConntrackCli::new(Some(&ns.name))));
    (p, counts)
}

/// Every sync of the netlink side went over netlink (`at_least` batches), none fell back.
fn assert_all_over_netlink(counts: &ApplyCounts, at_least: u64) {
    let (netlink, fallbacks) = (counts.netlink.load(Ordering::Relaxed), counts.fallbacks.load(Ordering::Relaxed));
    assert_eq!(fallbacks, 0, "syncs fell back to nft -f");
    assert!(netlink >= at_least, "{netlink} batches over netlink, expected at least {at_least}");
}

fn web(endpoints: usize) -> (k8s_openapi::api::core::v1::Service, k8s_openapi::api::discovery::v1::EndpointSlice) {
    let svc = service(
        "ns",
        "web",
        json!({"type": "NodePort", "clusterIP": "198.19.210.10", "externalIPs": ["198.18.211.5"],
               "sessionAffinity": "ClientIP",
               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
               "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30210}]}),
        json!({}),
    );
    let ips: Vec<String> = (0..endpoints).map(|i| format!("198.18.212.{}", i + 1)).collect();
    let eps: Vec<(&str, Option<&str>)> = ips.iter().map(|ip| (ip.as_str(), None)).collect();
    (svc, slice("ns", "web", 8080, &eps))
}

fn lb(endpoints: &[(&str, Option<&str>)]) -> (k8s_openapi::api::core::v1::Service, k8s_openapi::api::discovery::v1::EndpointSlice) {
    let svc = service(
        "ns",
        "lb",
        json!({"type": "LoadBalancer", "clusterIP": "198.19.210.20",
               "externalTrafficPolicy": "Local", "healthCheckNodePort": 30211,
               "loadBalancerSourceRanges": ["10.0.0.0/8", "198.18.210.0/23"],
               "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30212}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "198.18.213.1"}]}}),
    );
    (svc, slice("ns", "lb", 9090, endpoints))
}

/// The same sequence of changes in both namespaces, compared after each sync.
fn changes_agree(tag: &str, detector: LocalDetector) {
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    let (mut pa, counts) = proxier_counted(&a, cfg(detector.clone()), true);
    let mut pb = proxier(&b, cfg(detector.clone()), false);
    let both = |step: &str, force_full: bool, pa: &mut Proxier, pb: &mut Proxier, f: &dyn Fn(&mut Proxier)| {
        f(pa);
        f(pb);
        let ra = pa.sync(Instant::now(), force_full).expect("netlink side applies");
        let rb = pb.sync(Instant::now(), force_full).expect("nft side applies");
        assert_eq!(ra.full, rb.full, "{step}");
        assert_same_tables(&a, &b, step);
        ra.full
    };
    let full = both("full sync", false, &mut pa, &mut pb, &|p| {
        let (s, e) = web(0);
        p.on_service(None, Some(&s));
        p.on_endpoint_slice(&e, false);
        let (s, e) = lb(&[("198.18.214.1", Some(NODE)), ("198.18.214.2", Some("other"))]);
        p.on_service(None, Some(&s));
        p.on_endpoint_slice(&e, false);
    });
    assert!(full);
    let partial = both("web 0 → 3 endpoints", false, &mut pa, &mut pb, &|p| {
        p.on_endpoint_slice(&web(3).1, false);
    });
    assert!(!partial, "changes after the first sync are partial");
    both("web 3 → 1, lb moves", false, &mut pa, &mut pb, &|p| {
        p.on_endpoint_slice(&web(1).1, false);
        p.on_endpoint_slice(&lb(&[("198.18.214.3", Some(NODE))]).1, false);
    });
    let periodic = both("periodic full sync over a filled table", true, &mut pa, &mut pb, &|p| {
        p.on_endpoint_slice(&web(2).1, false);
    });
    assert!(periodic, "a forced sync is full");
    std::thread::sleep(Duration::from_millis(1100));
    both("stale chains deleted", false, &mut pa, &mut pb, &|_| {});
    both("lb deleted", false, &mut pa, &mut pb, &|p| {
        let (s, e) = lb(&[]);
        p.on_service(Some(&s), None);
        p.on_endpoint_slice(&e, true);
    });
    std::thread::sleep(Duration::from_millis(1100));
    both("lb's chains deleted", false, &mut pa, &mut pb, &|_| {});
    let listed = a.exec(&["nft", "list", "table", "ip", "kube-proxy"]);
    assert!(!listed.contains("ns/lb/"), "{listed}");
    assert!(listed.contains("198.18.212.1:8080"), "{listed}");
    // Two full syncs and four partial ones with changes (the stale-chain deletions are
    // batches of their own).
    assert_all_over_netlink(&counts, 6);
    assert!(counts.netlink_listings.load(Ordering::Relaxed) >= 1, "the first full sync listed the table over netlink");
}

/// A restarted proxy's first sync is full, over the table an earlier process left: it lists
/// the table's chains and sets (over netlink: the same names `nft` lists), the earlier
/// process's Service chains that no Service uses any more are flushed, and the tables still
/// agree.
fn restart_agrees(tag: &str) {
    let detector = LocalDetector::Cidr("198.18.0.0/15".parse().unwrap());
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    for (ns, netlink) in [(&a, true), (&b, false)] {
        let mut earlier = proxier(ns, cfg(detector.clone()), netlink);
        for (s, e) in [web(2), lb(&[("198.18.214.1", Some(NODE))])] {
            earlier.on_service(None, Some(&s));
            earlier.on_endpoint_slice(&e, false);
        }
        assert!(earlier.sync(Instant::now(), false).expect("first process syncs").full);
    }
    assert_same_tables(&a, &b, "before the restart");
    // What the restarted proxy lists first: netlink and nft name the same objects.
    let sorted = |(mut c, mut s): (Vec<String>, Vec<String>)| {
        c.sort();
        s.sort();
        (c, s)
    };
    let ipv4 = libc::NFPROTO_IPV4 as u8;
    let over_netlink = sorted(NftNetlink::open(Some(&a.name)).unwrap().table_objects(ipv4).expect("listed over netlink"));
    let by_nft = sorted(NftApplier::nft_only(Some(&a.name)).existing_objects(IpFamily::V4).expect("listed by nft"));
    assert_eq!(over_netlink, by_nft);
    assert!(over_netlink.0.iter().any(|c| c.contains("ns/lb/")) && over_netlink.1.iter().any(|s| s.starts_with("endpoints-")));
    let empty = Netns::new(&format!("{tag}e"));
    assert_eq!(NftNetlink::open(Some(&empty.name)).unwrap().table_objects(ipv4).unwrap(), (Vec::new(), Vec::new()), "no table yet");
    let mut restarted = Vec::new();
    let mut counts = None;
    for (ns, netlink) in [(&a, true), (&b, false)] {
        let (mut p, c) = proxier_counted(ns, cfg(detector.clone()), netlink);
        if netlink {
            counts = Some(c);
        }
        let (s, e) = web(3);
        p.on_service(None, Some(&s));
        p.on_endpoint_slice(&e, false);
        assert!(p.sync(Instant::now(), false).expect("restarted process syncs").full);
        restarted.push(p);
    }
    assert_same_tables(&a, &b, "first sync after the restart");
    std::thread::sleep(Duration::from_millis(1100));
    for p in &mut restarted {
        p.sync(Instant::now(), false).expect("the stale chains' deletion applies");
    }
    assert_same_tables(&a, &b, "the earlier process's chains deleted");
    let listed = a.exec(&["nft", "list", "table", "ip", "kube-proxy"]);
    assert!(listed.contains("198.18.212.3:8080"), "{listed}");
    assert!(!listed.contains("198.18.214.1"), "the gone Service's chains and elements are gone: {listed}");
    let counts = counts.expect("the netlink side's counts");
    assert_all_over_netlink(&counts, 2);
    assert_eq!(counts.netlink_listings.load(Ordering::Relaxed), 1, "the restarted proxy listed the table over netlink");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn netlink_full_sync_after_a_restart_matches_nft() {
    restart_agrees("nlr");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn netlink_partial_syncs_match_nft_with_a_cidr_detector() {
    changes_agree("nlc", LocalDetector::Cidr("198.18.0.0/15".parse().unwrap()));
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn netlink_partial_syncs_match_nft_with_an_interface_detector() {
    changes_agree("nli", LocalDetector::InterfaceNamePrefix("veth".into()));
}

/// `ip[6] saddr|daddr [!=] ADDR|CIDR`, the family taken from the address.
fn addr(dir: Direction, negate: bool, v: &str) -> Match {
    let value = match v.parse() {
        Ok(ip) => AddrOrCidr::Addr(ip),
        Err(_) => AddrOrCidr::Cidr(v.parse().unwrap()),
    };
    let family = match value {
        AddrOrCidr::Addr(ip) => IpFamily::of(&ip),
        AddrOrCidr::Cidr(c) => c.family(),
    };
    Match::Addr { family, dir, negate, value }
}

/// Every rule form, element and set command the syncer writes, one transaction.
fn every_form() -> Transaction {
    let goto = |c: &str| Statement::Verdict(Verdict::Goto(c.into()));
    let mut tx = Transaction::new(IpFamily::V4);
    tx.add_chain("t-a");
    tx.add_chain("t-b");
    tx.flush_chain("t-a");
    tx.add_affinity_set("t-aff", 10800);
    tx.add_endpoint_map("endpoints-tcp-0", Protocol::Tcp);
    let rules = vec![
        Rule::new(
            vec![addr(Direction::Destination, false, "198.19.0.1"), addr(Direction::Source, true, "198.18.0.0/15")],
            Statement::Verdict(Verdict::Jump("t-b".into())),
        ),
        Rule::new(vec![addr(Direction::Source, false, "10.0.0.0/8")], Statement::Verdict(Verdict::Return)),
        Rule::new(vec![addr(Direction::Source, true, "198.18.0.7")], Statement::Verdict(Verdict::Drop)),
        Rule::new(vec![Match::Iifname { negate: true, name: "knode0".into(), prefix: false }], goto("t-b")),
        Rule::new(vec![Match::Iifname { negate: false, name: "veth".into(), prefix: true }], goto("t-b"))
            .with_comment("short-circuit pod traffic"),
        Rule::new(vec![Match::FibSourceLocal], goto("t-b")).with_comment("short-circuit local traffic"),
        Rule::new(vec![Match::RandomOneIn(3)], goto("t-b")),
        Rule::new(vec![Match::SourceInSet { family: IpFamily::V4, set: "t-aff".into() }], goto("t-b")),
        Rule::new(Vec::new(), Statement::UpdateSourceInSet { family: IpFamily::V4, set: "t-aff".into() }),
        Rule::new(vec![Match::L4Proto(Protocol::Udp)], Statement::Dnat("198.18.215.1:53".parse().unwrap())),
        Rule::new(vec![Match::L4Proto(Protocol::Sctp)], Statement::Dnat("198.18.215.1:80".parse().unwrap())),
        dnat_from_map(IpFamily::V4, Protocol::Tcp),
        dnat_from_map(IpFamily::V4, Protocol::Udp),
        dnat_from_map(IpFamily::V4, Protocol::Sctp),
        Rule::verdict(Verdict::Goto("t-b".into())),
    ];
    for r in &rules {
        tx.add_service_rule("t-a", r);
    }
    tx.add_element("cluster-ips", "198.19.0.9", None, None);
    for (map, key, value) in [
        ("endpoints-tcp-0", "16777216", "198.18.215.1 . 8080"),
        ("endpoints-tcp-0", "16777217", "198.18.215.2 . 8080"),
        ("endpoints-udp-0", "16777216", "198.18.215.1 . 53"),
        ("endpoints-sctp-0", "0", "198.18.215.3 . 9999"),
    ] {
        tx.add_element(map, key, Some(value), None);
    }
    tx.add_element("hairpin-endpoints", "198.18.215.1 . 198.18.215.1", None, None);
    tx.add_element("service-ips", "198.19.0.9 . tcp . 80", Some("goto t-a"), None);
    tx.add_element("no-endpoint-services", "198.19.0.9 . udp . 53", Some("goto reject-chain"), Some("ns/x:dns"));
    tx.add_element("no-endpoint-nodeports", "tcp . 30999", Some("drop"), Some("ns/x:p"));
    tx.add_element("service-nodeports", "sctp . 30998", Some("goto t-a"), None);
    tx
}

/// The fixed skeleton of table `ip kube-proxy`, written by a full sync.
/// An empty full sync, plus (through `nft`) the UDP and SCTP endpoint maps
/// Services of those protocols would bring; `every_form` declares the TCP one.
fn skeleton(ns: &Netns) {
    let mut p = proxier(ns, cfg(LocalDetector::None), false);
    p.sync(Instant::now(), false).expect("skeleton applies");
    let mut tx = Transaction::new(IpFamily::V4);
    tx.add_endpoint_map("endpoints-udp-0", Protocol::Udp);
    tx.add_endpoint_map("endpoints-sctp-0", Protocol::Sctp);
    NftApplier::nft_only(Some(&ns.name)).apply(tx.as_str()).expect("endpoint maps apply");
}

/// `meta l4proto P dnat ip to numgen random mod 2 offset 2^24 map @endpoints-P-0`.
fn dnat_from_map(family: IpFamily, proto: Protocol) -> Rule {
    let map = match proto {
        Protocol::Tcp => "endpoints-tcp-0",
        Protocol::Udp => "endpoints-udp-0",
        Protocol::Sctp => "endpoints-sctp-0",
    };
    Rule::new(vec![Match::L4Proto(proto)], Statement::DnatFromMap { family, modulus: 2, offset: 1 << 24, map })
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn every_rule_form_reads_back_as_nft_writes_it() {
    let a = Netns::new("nlfa");
    let b = Netns::new("nlfb");
    skeleton(&a);
    skeleton(&b);
    let tx = every_form();
    assert!(tx.commands().is_some());
    let mut nl = NftNetlink::open(Some(&a.name)).expect("netlink socket");
    nl.apply(&tx).expect("the kernel takes the batch");
    NftApplier::nft_only(Some(&b.name)).apply(tx.as_str()).expect("nft takes the text");
    assert_same_tables(&a, &b, "every form");
    // The map made over netlink carries nft's typeof user data: nft shows
    // it as declared and accepts rules written against it.
    let map = a.exec(&["nft", "list", "map", "ip", "kube-proxy", "endpoints-tcp-0"]);
    assert!(
        map.contains("typeof numgen random mod 1 : ip daddr . tcp dport") && map.contains("comment \"endpoints of load-balancing chains\""),
        "{map}"
    );
    let mut more = Transaction::new(IpFamily::V4);
    more.add_service_rule("t-b", &dnat_from_map(IpFamily::V4, Protocol::Tcp));
    for ns in [&a, &b] {
        NftApplier::nft_only(Some(&ns.name)).apply(more.as_str()).expect("nft takes a rule on the netlink-made map");
    }
    let listed = a.exec(&["nft", "list", "chain", "ip", "kube-proxy", "t-a"]);
    for want in [
        "iifname != \"knode0\" goto t-b",
        "iifname \"veth*\" goto t-b comment \"short-circuit pod traffic\"",
        "ip saddr 10.0.0.0/8 return",
        "ip saddr != 198.18.0.7 drop",
        "update @t-aff { ip saddr }",
        "meta l4proto udp dnat to 198.18.215.1:53",
        "meta l4proto udp dnat ip to numgen random mod 2 offset 16777216 map @endpoints-udp-0",
    ] {
        assert!(listed.contains(want), "{want:?} not in\n{listed}");
    }

    // Deleting goes through netlink too.
    let mut del = Transaction::new(IpFamily::V4);
    del.delete_element("service-ips", "198.19.0.9 . tcp . 80");
    del.delete_element("cluster-ips", "198.19.0.9");
    del.delete_element("service-nodeports", "sctp . 30998");
    del.flush_chain("t-a");
    del.delete_set("t-aff");
    del.delete_chain("t-a");
    nl.apply(&del).expect("deletions apply");
    NftApplier::nft_only(Some(&b.name)).apply(del.as_str()).unwrap();
    assert_same_tables(&a, &b, "deletions");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn a_refused_batch_names_the_command_and_applies_nothing() {
    let a = Netns::new("nlr");
    skeleton(&a);
    let before = table(&a);
    let mut tx = Transaction::new(IpFamily::V4);
    tx.add_chain("t-new");
    tx.add_service_rule("t-new", &Rule::verdict(Verdict::Goto("no-such-chain".into())));
    tx.add_element("service-ips", "198.19.0.9 . tcp . 80", Some("goto t-new"), None);
    let mut nl = NftNetlink::open(Some(&a.name)).expect("netlink socket");
    match nl.apply(&tx) {
        Err(NetlinkApplyError::Rejected { command, source }) => {
            assert_eq!(command, "add rule ip kube-proxy t-new goto no-such-chain");
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{source}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(table(&a), before, "a refused batch must change nothing");
    // The same socket keeps working afterwards.
    let mut ok = Transaction::new(IpFamily::V4);
    ok.add_chain("t-new");
    nl.apply(&ok).expect("a good batch after a refused one");
    assert!(a.exec(&["nft", "list", "chains"]).contains("t-new"));
    // Through the applier, the refusal is an ApplyError naming the command.
    let err = NftApplier::new(Some(&a.name)).apply_nft(&tx).unwrap_err();
    assert!(err.to_string().contains("goto no-such-chain"), "{err}");
}

/// A partial sync touching 2000 Services (1 → 3 endpoints: every chain's
/// rule and the endpoint maps change) is one batch of several MiB (the
/// socket's send buffer is raised for it); the result still matches `nft -f`.
#[test]
#[ignore = "needs root: run hack/test.sh"]
fn a_large_partial_sync_matches_nft() {
    let a = Netns::new("nlla");
    let b = Netns::new("nllb");
    let mut pa = proxier(&a, cfg(LocalDetector::None), true);
    let mut pb = proxier(&b, cfg(LocalDetector::None), false);
    let svc =
        |i: usize| test_support::proxy::cluster_ip_service("ns", &format!("s{i}"), &format!("198.19.{}.{}", 100 + i / 250, i % 250 + 1));
    let eps = |i: usize, n: usize| {
        let ips: Vec<String> = (0..n).map(|e| format!("198.18.{}.{}", 220 + i / 250, (i % 50) * 5 + e + 1)).collect();
        let list: Vec<(&str, Option<&str>)> = ips.iter().map(|ip| (ip.as_str(), None)).collect();
        slice("ns", &format!("s{i}"), 8080, &list)
    };
    for p in [&mut pa, &mut pb] {
        for i in 0..2000 {
            p.on_service(None, Some(&svc(i)));
            p.on_endpoint_slice(&eps(i, 1), false);
        }
        assert!(p.sync(Instant::now(), false).unwrap().full);
        for i in 0..2000 {
            p.on_endpoint_slice(&eps(i, 3), false);
        }
        let r = p.sync(Instant::now(), false).expect("the large partial sync applies");
        assert!(!r.full);
        assert!(r.commands > 10_000, "{} commands", r.commands);
    }
    assert_same_tables(&a, &b, "2000 Services changed at once");

    // The same size straight through the socket (no fallback to nft possible).
    let mut tx = Transaction::new(IpFamily::V4);
    for i in 0..10_000 {
        let chain = format!("t-big-{i}");
        tx.add_chain(&chain);
        tx.add_service_rule(&chain, &Rule::verdict(Verdict::Return));
    }
    assert!(tx.as_str().len() > 500_000);
    NftNetlink::open(Some(&a.name)).unwrap().apply(&tx).expect("a batch of 20000 commands");
    assert!(a.exec(&["nft", "list", "chain", "ip", "kube-proxy", "t-big-9999"]).contains("return"));
}

/// The IPv6 forms: 16-byte addresses and keys, header offsets 8/24, NAT family ip6.
#[test]
#[ignore = "needs root: run hack/test.sh"]
fn ipv6_rule_forms_read_back_as_nft_writes_them() {
    let a = Netns::new("nl6a");
    let b = Netns::new("nl6b");
    for ns in [&a, &b] {
        let mut p = Proxier::new(
            IpFamily::V6,
            Box::new(NftablesBackend::new(NftConfig::new(IpFamily::V6, NODE))),
            Box::new(NftApplier::nft_only(Some(&ns.name))),
            Box::new(ConntrackCli::new(Some(&ns.name))),
        );
        p.sync(Instant::now(), false).expect("ip6 skeleton applies");
    }
    let goto = || Statement::Verdict(Verdict::Goto("t-b".into()));
    let mut tx = Transaction::new(IpFamily::V6);
    tx.add_chain("t-a");
    tx.add_chain("t-b");
    tx.add_affinity_set("t-aff", 600);
    tx.add_endpoint_map("endpoints-tcp-0", Protocol::Tcp);
    for r in [
        Rule::new(
            vec![addr(Direction::Destination, false, "fd00:198:19::1"), addr(Direction::Source, true, "fd00:198:18::/64")],
            Statement::Verdict(Verdict::Jump("t-b".into())),
        ),
        Rule::new(vec![addr(Direction::Source, false, "fd00:198:18::/60")], goto()),
        Rule::new(vec![Match::SourceInSet { family: IpFamily::V6, set: "t-aff".into() }], goto()),
        Rule::new(Vec::new(), Statement::UpdateSourceInSet { family: IpFamily::V6, set: "t-aff".into() }),
        Rule::new(vec![Match::L4Proto(Protocol::Tcp)], Statement::Dnat("[fd00:198:18::5]:8080".parse().unwrap())),
        dnat_from_map(IpFamily::V6, Protocol::Tcp),
    ] {
        tx.add_service_rule("t-a", &r);
    }
    tx.add_element("cluster-ips", "fd00:198:19::1", None, None);
    tx.add_element("endpoints-tcp-0", "16777217", Some("fd00:198:18::5 . 8080"), None);
    tx.add_element("hairpin-endpoints", "fd00:198:18::5 . fd00:198:18::5", None, None);
    tx.add_element("service-ips", "fd00:198:19::1 . tcp . 80", Some("goto t-a"), Some("ns/v6:p80"));
    NftNetlink::open(Some(&a.name)).unwrap().apply(&tx).expect("the kernel takes the ip6 batch");
    NftApplier::nft_only(Some(&b.name)).apply(tx.as_str()).expect("nft takes the ip6 text");
    let table = |ns: &Netns| {
        let text = ns.exec(&["nft", "-j", "list", "table", "ip6", "kube-proxy"]);
        let mut v: Value = serde_json::from_str(&text).unwrap();
        strip_handles(&mut v);
        v
    };
    assert_eq!(table(&a), table(&b));
    let listed = a.exec(&["nft", "list", "chain", "ip6", "kube-proxy", "t-a"]);
    assert!(listed.contains("dnat to [fd00:198:18::5]:8080"), "{listed}");
    assert!(listed.contains("dnat ip6 to numgen random mod 2 offset 16777216 map @endpoints-tcp-0"), "{listed}");
}
