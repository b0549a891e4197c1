//! The nftables builder against expected rulesets: golden text for small
//! cases (shapes as in upstream's proxier_test.go), incremental syncs that
//! touch only what changed, and a 10k-service scale check.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proxy::applier::RulesApplier;
use proxy::nftables::{LocalDetector, NftConfig, NftablesSyncer};
use proxy::{EndpointsChangeTracker, EndpointsMap, IpFamily, ServiceChangeTracker, ServicePortMap};
use serde_json::json;
use test_support::proxy::*;

/// Services, endpoints and their trackers for one test.
struct World {
    svc_tracker: ServiceChangeTracker,
    ep_tracker: EndpointsChangeTracker,
    services: ServicePortMap,
    endpoints: EndpointsMap,
}

impl World {
    fn new() -> Self {
        World {
            svc_tracker: ServiceChangeTracker::new(IpFamily::V4),
            ep_tracker: EndpointsChangeTracker::new(IpFamily::V4, "node1"),
            services: Default::default(),
            endpoints: Default::default(),
        }
    }

    fn changes(&mut self) -> BTreeSet<proxy::NamespacedName> {
        let mut changed = self.svc_tracker.apply(&mut self.services);
        changed.extend(self.ep_tracker.apply(&mut self.endpoints));
        changed
    }
}

fn config() -> NftConfig {
    let mut cfg = NftConfig::new(IpFamily::V4, "node1");
    cfg.local_detector = LocalDetector::Cidr("10.0.0.0/8".parse().unwrap());
    cfg.node_port_ips = Some(vec!["192.168.0.2".parse().unwrap()]);
    cfg.service_cidrs = vec!["172.30.0.0/16".parse().unwrap()];
    cfg
}

/// A full sync's shape: a skeleton (`nft -f` text, starting with the table), then the
/// per-Service part, which starts by emptying the maps and sets it fills and has a
/// netlink encoding for every command.
fn assert_full_sync_goes_over_netlink(out: &proxy::nftables::SyncOutput) {
    let tx = &out.transaction;
    assert!(tx.skeleton().expect("a full sync has a skeleton").starts_with("add table ip kube-proxy"));
    assert!(!tx.skeleton().unwrap().contains("flush map ip kube-proxy service-ips"), "the skeleton leaves the Services' maps alone");
    assert!(tx.after_skeleton().starts_with("flush set ip kube-proxy cluster-ips\n"), "{}", tx.after_skeleton());
    let commands = tx.commands().expect("the per-Service part keeps its commands");
    assert_eq!(commands.len(), tx.after_skeleton().lines().count(), "one command per line");
    assert_eq!(commands.len() + tx.skeleton_lines(), tx.len());
    proxy::applier::nft_netlink::batch(commands, IpFamily::V4, 0).expect("every command has a netlink form");
}

/// The lines of `text` after the fixed setup part (from the first per-service line).
fn service_part(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let last_setup = lines.iter().rposition(|l| l.starts_with("flush set ip kube-proxy hairpin-endpoints")).unwrap();
    lines[last_setup + 1..].join("\n") + "\n"
}

#[test]
fn cluster_ip_service_golden() {
    let mut w = World::new();
    w.svc_tracker.update(None, Some(&cluster_ip_service("ns1", "svc1", "172.30.0.41")));
    w.ep_tracker.endpoint_slice_update(&slice("ns1", "svc1", 80, &[("10.180.0.1", None)]), false);
    let changed = w.changes();
    let out = NftablesSyncer::new().sync(&w.services, &w.endpoints, &changed, &config(), Instant::now());
    let text = out.transaction.as_str();
    assert!(text.starts_with("add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n"));
    for line in [
        "add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }",
        "add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check",
        "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x00004000",
        "add rule ip kube-proxy masquerading masquerade fully-random",
        "add set ip kube-proxy hairpin-endpoints { type ipv4_addr . ipv4_addr ; comment \"endpoint . endpoint: a pod reaching itself through a Service\" ; }",
        "add rule ip kube-proxy masquerading ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade",
        "add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\"",
        "add element ip kube-proxy nodeport-ips { 192.168.0.2 }",
        "add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert_eq!(
        service_part(text),
        "\
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add map ip kube-proxy endpoints-tcp-0 { typeof numgen random mod 1 : ip daddr . tcp dport ; comment \"endpoints of load-balancing chains\" ; }
flush map ip kube-proxy endpoints-tcp-0
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 1 offset 0 map @endpoints-tcp-0
add element ip kube-proxy endpoints-tcp-0 { 0 : 10.180.0.1 . 80 }
add element ip kube-proxy hairpin-endpoints { 10.180.0.1 . 10.180.0.1 }
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
"
    );
}

#[test]
fn load_balancer_local_policy_and_affinity_golden() {
    let mut w = World::new();
    // Upstream's svc2: LoadBalancer, externalTrafficPolicy Local, no local endpoint.
    w.svc_tracker.update(
        None,
        Some(&service(
            "ns2",
            "svc2",
            json!({
        "type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIP": "172.30.0.42",
        "externalIPs": ["192.168.99.22"], "healthCheckNodePort": 30000,
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3001}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}),
        )),
    );
    w.ep_tracker.endpoint_slice_update(&slice("ns2", "svc2", 80, &[("10.180.0.2", None)]), false);
    // Upstream's svc5: LoadBalancer, Cluster policy, source ranges, ClientIP affinity.
    w.svc_tracker.update(
        None,
        Some(&service(
            "ns5",
            "svc5",
            json!({
        "type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "clusterIP": "172.30.0.45",
        "loadBalancerSourceRanges": [" 203.0.113.0/25"], "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3002}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}),
        )),
    );
    w.ep_tracker.endpoint_slice_update(&slice("ns5", "svc5", 80, &[("10.180.0.3", None)]), false);
    let changed = w.changes();
    let out = NftablesSyncer::new().sync(&w.services, &w.endpoints, &changed, &config(), Instant::now());
    assert_full_sync_goes_over_netlink(&out);
    let part = service_part(out.transaction.as_str());
    let expected = "\
add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
flush chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
flush chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
flush chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
flush chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
add map ip kube-proxy endpoints-tcp-0 { typeof numgen random mod 1 : ip daddr . tcp dport ; comment \"endpoints of load-balancing chains\" ; }
flush map ip kube-proxy endpoints-tcp-0
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 1 offset 0 map @endpoints-tcp-0
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit pod traffic\"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit local traffic\"
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != 203.0.113.0/25 drop
";
    let (chains_and_rules, elements) = part.split_at(part.find("add element").unwrap());
    assert_eq!(chains_and_rules, expected);
    let mut elements: Vec<&str> = elements.lines().collect();
    elements.sort();
    assert_eq!(
        elements,
        [
            "add element ip kube-proxy cluster-ips { 172.30.0.42 }",
            "add element ip kube-proxy cluster-ips { 172.30.0.45 }",
            "add element ip kube-proxy endpoints-tcp-0 { 0 : 10.180.0.2 . 80 }",
            "add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }",
            "add element ip kube-proxy hairpin-endpoints { 10.180.0.2 . 10.180.0.2 }",
            "add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment \"ns2/svc2:p80\" : drop }",
            "add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment \"ns2/svc2:p80\" : drop }",
            "add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment \"ns2/svc2:p80\" : drop }",
            "add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
            "add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }",
            "add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }",
            "add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
            "add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }",
            "add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
            "add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }",
        ]
    );
}

#[test]
fn no_endpoints_rejects() {
    let mut w = World::new();
    w.svc_tracker.update(None, Some(&cluster_ip_service("ns6", "svc6", "172.30.0.46")));
    let changed = w.changes();
    let out = NftablesSyncer::new().sync(&w.services, &w.endpoints, &changed, &config(), Instant::now());
    assert_eq!(
        service_part(out.transaction.as_str()),
        "add element ip kube-proxy cluster-ips { 172.30.0.46 }\n\
         add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain }\n"
    );
}

#[test]
fn endpoint_choice_and_source_ranges_use_no_anonymous_sets() {
    let mut w = World::new();
    w.svc_tracker.update(
        None,
        Some(&service(
            "ns6",
            "svc6",
            json!({
        "type": "LoadBalancer", "clusterIP": "172.30.0.46",
        "loadBalancerSourceRanges": ["203.0.113.0/25", "198.51.100.0/24"],
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3006}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.9"}]}}),
        )),
    );
    let eps = [("10.180.0.1", None), ("10.180.0.2", None), ("10.180.0.3", None)];
    w.ep_tracker.endpoint_slice_update(&slice("ns6", "svc6", 80, &eps), false);
    let changed = w.changes();
    let out = NftablesSyncer::new().sync(&w.services, &w.endpoints, &changed, &config(), Instant::now());
    assert_full_sync_goes_over_netlink(&out);
    let part = service_part(out.transaction.as_str());
    let rules = |prefix: &str| -> Vec<String> {
        part.lines()
            .filter_map(|l| l.strip_prefix("add rule ip kube-proxy "))
            .filter_map(|l| l.split_once(' '))
            .filter(|(chain, _)| chain.starts_with(prefix))
            .map(|(_, rule)| rule.split("goto ").next().unwrap().trim_end().to_string())
            .collect()
    };
    // One of the N endpoints at random: keys 0..N of the slot's map.
    assert_eq!(
        rules("service-"),
        [
            "ip daddr 172.30.0.46 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
            "meta l4proto tcp dnat ip to numgen random mod 3 offset 0 map @endpoints-tcp-0",
        ]
    );
    for (k, ep) in eps.iter().enumerate() {
        let elem = format!("add element ip kube-proxy endpoints-tcp-0 {{ {k} : {} . 80 }}", ep.0);
        assert!(part.lines().any(|l| l == elem), "missing {elem}\n{part}");
    }
    assert_eq!(rules("firewall-"), ["ip saddr 203.0.113.0/25 return", "ip saddr 198.51.100.0/24 return", "drop"]);
    assert!(!part.contains("endpoint-"), "no endpoint chains without affinity");
    for l in part.lines().filter(|l| l.starts_with("add rule")) {
        assert!(!l.contains('{'), "inline set or map in {l}");
    }
}

#[test]
fn partial_sync_rewrites_only_the_changed_service() {
    let mut w = World::new();
    for i in 1..=3 {
        let name = format!("svc{i}");
        w.svc_tracker.update(None, Some(&cluster_ip_service("ns", &name, &format!("172.30.0.{i}"))));
        w.ep_tracker.endpoint_slice_update(&slice("ns", &name, 80, &[(&format!("10.180.0.{i}"), None)]), false);
    }
    let cfg = config();
    let mut syncer = NftablesSyncer::new();
    let mut applier = FakeApplier::default();
    let t0 = Instant::now();
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, t0);
    applier.apply(out.transaction.as_str()).unwrap();

    // svc2's endpoint moves: only its endpoint map elements change; its
    // chain keeps the same rules and is not rewritten.
    w.ep_tracker.endpoint_slice_update(&slice("ns", "svc2", 80, &[("10.180.0.22", None)]), false);
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, t0);
    let text = out.transaction.as_str();
    assert!(out.stale_chain_cleanup.is_none());
    assert_eq!(
        text,
        "\
delete element ip kube-proxy endpoints-tcp-0 { 16777216 }
add element ip kube-proxy endpoints-tcp-0 { 16777216 : 10.180.0.22 . 80 }
delete element ip kube-proxy hairpin-endpoints { 10.180.0.2 . 10.180.0.2 }
add element ip kube-proxy hairpin-endpoints { 10.180.0.22 . 10.180.0.22 }
"
    );
    assert_eq!(syncer.stale_chains().count(), 0);

    // svc2 gains a second endpoint: the rule's modulus changes, so its chain is rewritten.
    let two = [("10.180.0.22", None), ("10.180.0.23", None)];
    w.ep_tracker.endpoint_slice_update(&slice("ns", "svc2", 80, &two), false);
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, t0);
    let text = out.transaction.as_str();
    assert!(!text.contains("svc1") && !text.contains("svc3") && !text.contains("add table"), "{text}");
    assert!(text.contains("dnat ip to numgen random mod 2 offset 16777216 map @endpoints-tcp-0"));
    assert!(text.contains("add element ip kube-proxy endpoints-tcp-0 { 16777217 : 10.180.0.23 . 80 }"));

    // svc3 is deleted: its elements go, its chains are flushed; a second later they are deleted.
    let svc3 = cluster_ip_service("ns", "svc3", "172.30.0.3");
    w.svc_tracker.update(Some(&svc3), None);
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, t0 + Duration::from_secs(2));
    assert!(out.stale_chain_cleanup.is_none());
    let text = out.transaction.as_str();
    assert!(text.contains("delete element ip kube-proxy cluster-ips { 172.30.0.3 }"), "{text}");
    assert!(text.contains("delete element ip kube-proxy service-ips { 172.30.0.3 . tcp . 80 }"));
    assert!(text.contains("delete element ip kube-proxy endpoints-tcp-0 { 33554432 }"));
    assert_eq!(text.lines().filter(|l| l.starts_with("flush chain")).count(), 1);
    assert_eq!(syncer.stale_chains().count(), 1);
    let later = syncer.sync(&w.services, &w.endpoints, &BTreeSet::new(), &cfg, t0 + Duration::from_secs(4));
    let cleanup = later.stale_chain_cleanup.expect("svc3's chain is due");
    assert_eq!(cleanup.as_str().lines().last().unwrap(), "delete chain ip kube-proxy service-3IVSUKR6-ns/svc3/tcp/p80");

    // A failed apply forces the next sync to be full.
    syncer.sync_failed();
    let out = syncer.sync(&w.services, &w.endpoints, &BTreeSet::new(), &cfg, t0 + Duration::from_secs(3));
    assert!(out.transaction.as_str().starts_with("add table"));
    assert!(
        !out.transaction.as_str().contains("delete chain ip kube-proxy nat-prerouting"),
        "base chains re-created only on the first sync"
    );
}

#[test]
fn one_change_at_10k_services_is_small_and_fast() {
    let mut w = World::new();
    for i in 0..10_000u32 {
        let name = format!("svc{i}");
        let ip = format!("172.30.{}.{}", i / 250, i % 250 + 1);
        w.svc_tracker.update(None, Some(&cluster_ip_service("ns", &name, &ip)));
        let ep = format!("10.{}.{}.{}", 100 + i / 62500, (i / 250) % 250, i % 250 + 1);
        w.ep_tracker.endpoint_slice_update(&slice("ns", &name, 8080, &[(&ep, Some("node2"))]), false);
    }
    let cfg = config();
    let mut syncer = NftablesSyncer::new();
    let start = Instant::now();
    let changed = w.changes();
    let full = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    println!("full sync of 10000 services: {} commands in {:?}", full.transaction.len(), start.elapsed());

    w.ep_tracker.endpoint_slice_update(&slice("ns", "svc4242", 8080, &[("10.200.0.1", Some("node2")), ("10.200.0.2", None)]), false);
    let start = Instant::now();
    let changed = w.changes();
    let partial = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    let elapsed = start.elapsed();
    println!("partial sync after one endpoint change: {} commands in {elapsed:?}", partial.transaction.len());
    assert_eq!(changed.len(), 1);
    assert!(partial.transaction.len() < 20, "{}", partial.transaction.as_str());
    assert!(full.transaction.len() > 10 * partial.transaction.len());
}

/// Slots fill maps of 128: a partial sync that needs the next map declares
/// it (over netlink too: the command is typed), later ones do not.
#[test]
fn partial_sync_declares_a_new_endpoint_map_when_one_fills() {
    let mut w = World::new();
    let add = |w: &mut World, i: u32| {
        let name = format!("s{i}");
        let ip = format!("172.30.{}.{}", i / 250, i % 250 + 1);
        w.svc_tracker.update(None, Some(&cluster_ip_service("ns", &name, &ip)));
        let ep = format!("10.180.{}.{}", i / 250, i % 250 + 1);
        w.ep_tracker.endpoint_slice_update(&slice("ns", &name, 80, &[(&ep, None)]), false);
    };
    let maps = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with("add map ip kube-proxy endpoints-")).map(str::to_string).collect()
    };
    add(&mut w, 0);
    let cfg = config();
    let mut syncer = NftablesSyncer::new();
    let changed = w.changes();
    let full = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    assert_eq!(maps(full.transaction.as_str()).len(), 1);

    for i in 1..=127 {
        add(&mut w, i);
    }
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    assert!(maps(out.transaction.as_str()).is_empty(), "128 slots fit in one map");
    add(&mut w, 128);
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    let text = out.transaction.as_str();
    assert_eq!(
        maps(text),
        [
            "add map ip kube-proxy endpoints-tcp-1 { typeof numgen random mod 1 : ip daddr . tcp dport ; comment \"endpoints of load-balancing chains\" ; }"
        ]
    );
    assert!(text.contains("map @endpoints-tcp-1"), "slot 128 uses the new map");
    assert!(out.transaction.commands().is_some(), "netlink-typed");

    add(&mut w, 129);
    let changed = w.changes();
    let out = syncer.sync(&w.services, &w.endpoints, &changed, &cfg, Instant::now());
    assert!(maps(out.transaction.as_str()).is_empty());
}
