//! End-to-end Service behaviour, in both nftables and iptables modes: rules
//! programmed through the library (no API server) into a test node
//! namespace whose "pods" are namespaces on a bridge, with real TCP/UDP
//! traffic from another pod, from the node itself and from an external
//! client. Covers session affinity, external/internal traffic policy Local
//! (with the health-check node port), ExternalIPs and LoadBalancer IPs, UDP
//! conntrack cleanup on endpoint change, hairpin, multiple/named ports,
//! restarts (and mode switches) keeping established flows, and the
//! masquerade rules. Addresses: 198.18.144.0/20 and 198.19.144–147.x.
//! Needs root (run by hack/test.sh), one at a time.

mod node_support;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use node_support::traffic::{Flow, HealthServers, Reply, http_get, serve_tcp, serve_udp, tcp, udp, udp_on, udp_socket};
use node_support::{Node, json_body, slice};
use proxy::app::backend::{IptablesBackend, NftablesBackend};
use proxy::app::host_setup::{Note, apply_route_localnet};
use proxy::app::proxier::Proxier;
use proxy::applier::cleanup::{RunningMode, cleanup_other_modes};
use proxy::applier::{IptablesApplier, NftApplier};
use proxy::conntrack::ConntrackCli;
use proxy::iptables::IptablesConfig;
use proxy::nftables::{LocalDetector, NftConfig};
use proxy::sysctl::ProcSysctl;
use proxy::{Cidr, IpFamily, NodeTopology};
use proxy_config::ProxyMode;
use serde_json::{Value, json};
use support::Netns;

const NODE: &str = "node1";
const OTHER_NODE: &str = "node2";
const WAIT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Nftables,
    Iptables,
}

impl Mode {
    fn other(self) -> Mode {
        match self {
            Mode::Nftables => Mode::Iptables,
            Mode::Iptables => Mode::Nftables,
        }
    }

    fn running(self) -> RunningMode {
        match self {
            Mode::Nftables => RunningMode::Nftables,
            Mode::Iptables => RunningMode::IptablesBased,
        }
    }

    fn node(self, tag: &str, pods: usize) -> Node {
        match self {
            Mode::Nftables => Node::new(&format!("n{tag}"), 144, pods),
            Mode::Iptables => Node::new(&format!("i{tag}"), 146, pods),
        }
    }
}

/// Proxier options the tests vary.
#[derive(Debug, Default, Clone)]
struct Opts {
    masquerade_all: bool,
    /// `clusterCIDR` (detect-local by CIDR).
    cluster_cidr: Option<String>,
}

fn proxier(mode: Mode, t: &Node, o: &Opts) -> Proxier {
    let cidr: Option<Cidr> = o.cluster_cidr.as_ref().map(|c| c.parse().unwrap());
    let ns = Some(t.node.name.as_str());
    let conntrack = Box::new(ConntrackCli::new(ns));
    match mode {
        Mode::Nftables => {
            let mut cfg = NftConfig::new(IpFamily::V4, NODE);
            cfg.masquerade_all = o.masquerade_all;
            cfg.local_detector = cidr.map(LocalDetector::Cidr).unwrap_or(LocalDetector::None);
            cfg.node_ip = t.node_ip().parse().ok();
            Proxier::new(IpFamily::V4, Box::new(NftablesBackend::new(cfg)), Box::new(NftApplier::new(ns)), conntrack)
        }
        Mode::Iptables => {
            let cfg = IptablesConfig {
                masquerade_all: o.masquerade_all,
                masquerade_bit: 14,
                local_cidr: cidr,
                node: NodeTopology { name: NODE.into(), zone: String::new() },
                family: IpFamily::V4,
                localhost_node_ports: true,
            };
            Proxier::new(IpFamily::V4, Box::new(IptablesBackend::new(cfg)), Box::new(IptablesApplier::new(IpFamily::V4, ns)), conntrack)
        }
    }
}

fn svc(name: &str, spec: Value) -> Service {
    test_support::proxy::service("ns", name, spec, json!({}))
}

fn sync(p: &mut Proxier) -> proxy::app::proxier::SyncReport {
    p.sync(Instant::now(), false).expect("rules apply")
}

/// The endpoint that answered, or a panic naming the request.
fn served_by(ns: &Netns, addr: &str) -> String {
    match tcp(ns, addr, WAIT) {
        Reply::From { endpoint, .. } => endpoint,
        other => panic!("{addr} from {}: {other:?}", ns.name),
    }
}

/// Distinct endpoints over `n` requests.
fn spread(ns: &Netns, addr: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|_| served_by(ns, addr)).collect()
}

/// The kernel's view of the rules, for assertions on what traffic can't show.
fn rules(mode: Mode, t: &Node) -> String {
    match mode {
        Mode::Nftables => t.node.exec(&["nft", "list", "table", "ip", "kube-proxy"]),
        Mode::Iptables => t.node.exec(&["iptables-save"]),
    }
}

fn eps(t: &Node, list: &[(usize, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(i, n)| (t.pod_ip(*i), *n)).collect()
}

fn session_affinity(mode: Mode) {
    let t = mode.node("sa", 4);
    for i in 0..3 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
    }
    let mut p = proxier(mode, &t, &Opts::default());
    let vip = t.service_ip(10);
    let spec = |affinity: bool| {
        let mut s = json!({"clusterIP": vip,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]});
        if affinity {
            s["sessionAffinity"] = json!("ClientIP");
            s["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 90}});
        }
        s
    };
    p.on_service(None, Some(&svc("sticky", spec(true))));
    let three = eps(&t, &[(0, NODE), (1, NODE), (2, NODE)]);
    p.on_endpoint_slice(&slice("sticky", &three, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    let addr = format!("{vip}:80");
    for src in [&t.pods[3], &t.node] {
        let seen = spread(src, &addr, 15);
        assert_eq!(seen.len(), 1, "ClientIP affinity from {}: {seen:?}", src.name);
    }
    let text = rules(mode, &t);
    let timeout = match mode {
        Mode::Nftables => "timeout 1m30s",
        Mode::Iptables => "--seconds 90",
    };
    assert!(text.contains(timeout), "affinity timeout {timeout:?} not in\n{text}");
    // Without affinity the same client spreads: the check above can fail.
    p.on_service(None, Some(&svc("sticky", spec(false))));
    sync(&mut p);
    assert!(spread(&t.pods[3], &addr, 30).len() > 1, "no affinity, no stickiness");
}

fn external_policy_local(mode: Mode) {
    let t = mode.node("el", 3);
    for i in 0..2 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
    }
    let hc = HealthServers::start(&t.node);
    let mut p = proxier(mode, &t, &Opts::default());
    let spec = |policy: &str| {
        json!({"type": "LoadBalancer", "clusterIP": t.service_ip(11), "externalTrafficPolicy": policy,
               "healthCheckNodePort": 30900,
               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}]})
    };
    p.on_service(None, Some(&svc("local", spec("Local"))));
    let both = eps(&t, &[(0, NODE), (1, OTHER_NODE)]);
    p.on_endpoint_slice(&slice("local", &both, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    hc.sync(p.health_checks());
    let node_port = format!("{}:30081", t.node_ip());
    for _ in 0..10 {
        assert_eq!(
            tcp(&t.client, &node_port, WAIT),
            Reply::From { endpoint: format!("{}:8080", t.pod_ip(0)), source: t.client_ip() },
            "NodePort with Local policy: local endpoint only, client IP preserved"
        );
    }
    assert_eq!(spread(&t.pods[2], &format!("{}:80", t.service_ip(11)), 20).len(), 2, "the ClusterIP still uses every endpoint");
    let health = format!("{}:30900", t.node_ip());
    let ok = http_get(&t.client, &health).expect("health check answers");
    assert!(ok.starts_with("HTTP/1.0 200") || ok.starts_with("HTTP/1.1 200"), "{ok}");
    let body = json_body(&ok);
    assert_eq!(body["localEndpoints"], 1, "{ok}");
    assert_eq!(body["service"], json!({"namespace": "ns", "name": "local"}));

    let remote = eps(&t, &[(1, OTHER_NODE)]);
    p.on_endpoint_slice(&slice("local", &remote, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    hc.sync(p.health_checks());
    let r = tcp(&t.client, &node_port, Duration::from_millis(800));
    assert!(matches!(&r, Reply::Failed(_)), "no local endpoint: NodePort traffic dropped, got {r:?}");
    let unavailable = http_get(&t.client, &health).expect("health check answers");
    assert!(unavailable.contains(" 503 "), "{unavailable}");
    assert_eq!(json_body(&unavailable)["localEndpoints"], 0);

    // Cluster policy: the remote endpoint serves, and the source is masqueraded.
    p.on_service(None, Some(&svc("local", spec("Cluster"))));
    sync(&mut p);
    assert_eq!(tcp(&t.client, &node_port, WAIT), Reply::From { endpoint: format!("{}:8080", t.pod_ip(1)), source: t.bridge_ip() });
}

/// Both policies Local (a service the rules once failed to build: the
/// short-circuit for pod traffic jumped to a Cluster chain never written).
fn both_policies_local(mode: Mode) {
    let t = mode.node("bl", 3);
    for i in 0..2 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
    }
    let opts = Opts { cluster_cidr: Some(t.pod_cidr()), ..Opts::default() };
    let mut p = proxier(mode, &t, &opts);
    let (vip, ext) = (t.service_ip(19), t.service_ip(101));
    p.on_service(
        None,
        Some(&svc(
            "both",
            json!({"type": "NodePort", "clusterIP": vip, "externalIPs": [ext],
                   "internalTrafficPolicy": "Local", "externalTrafficPolicy": "Local",
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30085}]}),
        )),
    );
    let both = eps(&t, &[(0, NODE), (1, OTHER_NODE)]);
    p.on_endpoint_slice(&slice("both", &both, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    let local = BTreeSet::from([format!("{}:8080", t.pod_ip(0))]);
    assert_eq!(spread(&t.pods[2], &format!("{vip}:80"), 10), local, "ClusterIP: local only");
    for _ in 0..5 {
        assert_eq!(
            tcp(&t.client, &format!("{}:30085", t.node_ip()), WAIT),
            Reply::From { endpoint: format!("{}:8080", t.pod_ip(0)), source: t.client_ip() }
        );
    }
    // A pod going to the external IP is short-circuited to every endpoint.
    assert_eq!(spread(&t.pods[2], &format!("{ext}:80"), 24).len(), 2);
}

fn internal_policy_local(mode: Mode) {
    let t = mode.node("il", 3);
    for i in 0..2 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
    }
    let mut p = proxier(mode, &t, &Opts::default());
    let vip = t.service_ip(12);
    p.on_service(
        None,
        Some(&svc(
            "itl",
            json!({"clusterIP": vip, "internalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        )),
    );
    let both = eps(&t, &[(0, NODE), (1, OTHER_NODE)]);
    p.on_endpoint_slice(&slice("itl", &both, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    let addr = format!("{vip}:80");
    let want = BTreeSet::from([format!("{}:8080", t.pod_ip(0))]);
    assert_eq!(spread(&t.pods[2], &addr, 15), want, "from a pod");
    assert_eq!(spread(&t.node, &addr, 10), want, "from the node");
    let remote = eps(&t, &[(1, OTHER_NODE)]);
    p.on_endpoint_slice(&slice("itl", &remote, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    let r = tcp(&t.pods[2], &addr, Duration::from_millis(800));
    assert!(matches!(&r, Reply::Failed(_)), "no local endpoint: dropped, got {r:?}");
}

fn external_and_load_balancer_ips(mode: Mode) {
    let t = mode.node("ex", 2);
    serve_tcp(&t.pods[0], &t.pod_ip(0), 8080);
    let mut p = proxier(mode, &t, &Opts::default());
    let (vip, ext, lb) = (t.service_ip(13), t.service_ip(100), t.service_ip(200));
    let service = test_support::proxy::service(
        "ns",
        "lb",
        json!({"type": "LoadBalancer", "clusterIP": vip, "externalIPs": [ext],
               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30082}]}),
        json!({"loadBalancer": {"ingress": [{"ip": lb}]}}),
    );
    p.on_service(None, Some(&service));
    let one = eps(&t, &[(0, NODE)]);
    p.on_endpoint_slice(&slice("lb", &one, &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    let want = format!("{}:8080", t.pod_ip(0));
    let np = format!("{}:30082", t.node_ip());
    let cases: Vec<(&Netns, String)> = vec![
        (&t.pods[1], format!("{vip}:80")),
        (&t.pods[1], np.clone()),
        (&t.pods[1], format!("{ext}:80")),
        (&t.pods[1], format!("{lb}:80")),
        (&t.node, format!("{vip}:80")),
        (&t.node, np.clone()),
        (&t.node, format!("{ext}:80")),
        (&t.node, format!("{lb}:80")),
        (&t.client, np.clone()),
        (&t.client, format!("{ext}:80")),
        (&t.client, format!("{lb}:80")),
    ];
    for (ns, addr) in &cases {
        assert_eq!(served_by(ns, addr), want, "{addr} from {}", ns.name);
    }
    // NodePorts on localhost: iptables mode serves them once kube-proxy's
    // start-up sets route_localnet (as upstream); nftables mode never does.
    let localhost = "127.0.0.1:30082";
    match mode {
        Mode::Iptables => {
            let before = tcp(&t.node, localhost, Duration::from_millis(800));
            assert!(matches!(before, Reply::Failed(_)), "martian without route_localnet: {before:?}");
            let notes = t
                .node
                .run(|| {
                    let mut s = ProcSysctl::default();
                    apply_route_localnet(ProxyMode::IPTables, IpFamily::V4, true, None, &mut s)
                })
                .join()
                .unwrap();
            assert!(matches!(&notes[..], [Note::Set { .. }]), "{notes:?}");
            assert_eq!(served_by(&t.node, localhost), want);
        }
        Mode::Nftables => assert_eq!(tcp(&t.node, localhost, WAIT), Reply::Refused),
    }
    // Without endpoints, external destinations are rejected at once.
    p.on_endpoint_slice(&slice("lb", &[], &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    for addr in [format!("{ext}:80"), format!("{lb}:80"), np] {
        let start = Instant::now();
        assert_eq!(tcp(&t.client, &addr, WAIT), Reply::Refused, "{addr}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

fn udp_endpoint_change(mode: Mode) {
    let t = mode.node("ud", 3);
    for i in 0..2 {
        serve_udp(&t.pods[i], &t.pod_ip(i), 5353);
    }
    let mut p = proxier(mode, &t, &Opts::default());
    let vip = format!("{}:53", t.service_ip(14));
    p.on_service(
        None,
        Some(&svc(
            "dns",
            json!({"type": "NodePort", "clusterIP": t.service_ip(14),
                   "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30054}]}),
        )),
    );
    sync(&mut p);
    let client = udp_socket(&t.pods[2]);
    assert!(!matches!(udp_on(&client, &vip), Reply::From { .. }), "no endpoints yet");
    let port = [("dns", 5353, "UDP")];
    p.on_endpoint_slice(&slice("dns", &eps(&t, &[(0, NODE)]), &port), false);
    sync(&mut p);
    let first = format!("{}:5353", t.pod_ip(0));
    let got = (0..5).find_map(|_| udp_on(&client, &vip).endpoint().map(str::to_string));
    assert_eq!(got.as_deref(), Some(first.as_str()), "the first endpoint answers");
    let outside = udp_socket(&t.client);
    let np = format!("{}:30054", t.node_ip());
    for _ in 0..3 {
        assert_eq!(udp_on(&client, &vip).endpoint(), Some(first.as_str()));
        assert_eq!(udp_on(&outside, &np).endpoint(), Some(first.as_str()), "NodePort");
    }
    // Replace the endpoint; the old one still answers, so only deleting the
    // stale conntrack entry sends the same client flow to the new one.
    p.on_endpoint_slice(&slice("dns", &eps(&t, &[(1, NODE)]), &port), false);
    let report = sync(&mut p);
    assert!(report.conntrack_errors.is_empty(), "{:?}", report.conntrack_errors);
    assert!(report.conntrack_deleted > 0, "{report:?}");
    let second = format!("{}:5353", t.pod_ip(1));
    for _ in 0..3 {
        assert_eq!(udp_on(&client, &vip).endpoint(), Some(second.as_str()));
        assert_eq!(udp_on(&outside, &np).endpoint(), Some(second.as_str()), "NodePort");
    }
}

fn hairpin(mode: Mode) {
    let t = mode.node("hp", 1);
    serve_tcp(&t.pods[0], &t.pod_ip(0), 8080);
    let mut p = proxier(mode, &t, &Opts::default());
    let vip = t.service_ip(15);
    p.on_service(None, Some(&svc("self", json!({"clusterIP": vip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}))));
    p.on_endpoint_slice(&slice("self", &eps(&t, &[(0, NODE)]), &[("http", 8080, "TCP")]), false);
    sync(&mut p);
    // The pod reaches itself; masqueraded to the bridge so the reply returns.
    assert_eq!(
        tcp(&t.pods[0], &format!("{vip}:80"), WAIT),
        Reply::From { endpoint: format!("{}:8080", t.pod_ip(0)), source: t.bridge_ip() }
    );
}

fn sctp_supported(ns: &Netns) -> Result<(), String> {
    ns.run(|| {
        // SAFETY: socket(2) with constant arguments; the fd is closed at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: fd is a socket this closure just opened.
        unsafe { libc::close(fd) };
        Ok(())
    })
    .join()
    .unwrap()
}

fn multiple_named_ports(mode: Mode) {
    let t = mode.node("mp", 3);
    for i in 0..2 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8443);
        serve_udp(&t.pods[i], &t.pod_ip(i), 5353);
    }
    let sctp = sctp_supported(&t.node);
    let mut p = proxier(mode, &t, &Opts::default());
    let vip = t.service_ip(16);
    let mut ports = vec![
        json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web", "nodePort": 30083}),
        json!({"name": "https", "port": 443, "protocol": "TCP", "targetPort": "tls", "nodePort": 30443}),
        json!({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns", "nodePort": 30053}),
    ];
    let mut slice_ports = vec![("http", 8080, "TCP"), ("https", 8443, "TCP"), ("dns", 5353, "UDP")];
    match &sctp {
        Ok(()) => {
            ports.push(json!({"name": "assoc", "port": 9999, "protocol": "SCTP"}));
            slice_ports.push(("assoc", 9999, "SCTP"));
        }
        Err(e) => eprintln!("SCTP skipped: the kernel has no SCTP sockets ({e})"),
    }
    p.on_service(None, Some(&svc("multi", json!({"type": "NodePort", "clusterIP": vip, "ports": ports}))));
    let both = eps(&t, &[(0, NODE), (1, NODE)]);
    p.on_endpoint_slice(&slice("multi", &both, &slice_ports), false);
    sync(&mut p);
    let np = |port: u16| format!("{}:{port}", t.node_ip());
    for (ns, addr, target) in [
        (&t.pods[2], format!("{vip}:80"), ":8080"),
        (&t.pods[2], format!("{vip}:443"), ":8443"),
        (&t.node, format!("{vip}:443"), ":8443"),
        (&t.client, np(30083), ":8080"),
        (&t.client, np(30443), ":8443"),
    ] {
        for _ in 0..4 {
            let e = served_by(ns, &addr);
            assert!(e.ends_with(target), "{addr} from {} → {e}, want port {target}", ns.name);
        }
    }
    for (ns, addr) in [(&t.pods[2], format!("{vip}:53")), (&t.client, np(30053))] {
        let e = udp(ns, &addr, WAIT);
        assert!(e.endpoint().is_some_and(|e| e.ends_with(":5353")), "UDP {addr} from {}: {e:?}", ns.name);
    }
    if sctp.is_ok() {
        let text = rules(mode, &t);
        assert!(text.contains("sctp"), "SCTP port missing from\n{text}");
    }
}

fn restart_keeps_established_flows(mode: Mode) {
    let t = mode.node("rs", 3);
    for i in 0..2 {
        serve_tcp(&t.pods[i], &t.pod_ip(i), 8080);
    }
    let vip = t.service_ip(17);
    let feed = |p: &mut Proxier| {
        p.on_service(None, Some(&svc("web", json!({"clusterIP": vip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}))));
        let both = eps(&t, &[(0, NODE), (1, NODE)]);
        p.on_endpoint_slice(&slice("web", &both, &[("http", 8080, "TCP")]), false);
        sync(p);
    };
    let mut p = proxier(mode, &t, &Opts::default());
    feed(&mut p);
    let mut flow = Flow::open(&t.pods[2], &format!("{vip}:80"));
    let endpoint = flow.greeting.endpoint().expect("served").to_string();
    assert!(flow.echo("before").unwrap().starts_with(&endpoint));
    drop(p);
    // A restart: a new proxier's first (full) sync.
    let mut p = proxier(mode, &t, &Opts::default());
    feed(&mut p);
    let echoed = flow.echo("after-restart").expect("flow survives a restart");
    assert!(echoed.starts_with(&endpoint), "{echoed}");
    drop(p);
    // A restart in the other mode cleans this mode's rules up first.
    let report = cleanup_other_modes(mode.other().running(), Some(&t.node.name), Path::new("/proc/net"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut p = proxier(mode.other(), &t, &Opts::default());
    feed(&mut p);
    let echoed = flow.echo("after-switch").expect("flow survives a mode switch");
    assert!(echoed.starts_with(&endpoint), "{echoed}");
    match mode {
        Mode::Nftables => {
            assert_eq!(report.nft_tables, ["ip kube-proxy"]);
            let tables = t.node.exec(&["nft", "list", "tables"]);
            assert!(!tables.contains("kube-proxy"), "{tables}");
        }
        Mode::Iptables => {
            assert!(!report.iptables_chains.is_empty());
            // What remains are the iptables-nft tables; no KUBE- chain in them.
            let saved = t.node.exec(&["iptables-save"]);
            assert!(!saved.contains("KUBE-"), "left behind:\n{saved}");
        }
    }
    // New connections work in the new mode too.
    assert!(!spread(&t.pods[2], &format!("{vip}:80"), 10).is_empty());
}

/// A restarted proxier removes the rules of endpoints that went away
/// while it was down (chains, affinity sets), not only the map entries.
fn restart_removes_stale_rules(mode: Mode) {
    let t = mode.node("rr", 2);
    serve_tcp(&t.pods[0], &t.pod_ip(0), 8080);
    let vip = t.service_ip(20);
    let start = |endpoints: &[(usize, &'static str)]| {
        let mut p = proxier(mode, &t, &Opts::default());
        p.on_service(
            None,
            Some(&svc(
                "gone",
                json!({"clusterIP": vip, "sessionAffinity": "ClientIP",
                       "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
            )),
        );
        p.on_endpoint_slice(&slice("gone", &eps(&t, endpoints), &[("http", 8080, "TCP")]), false);
        sync(&mut p);
        p
    };
    let gone = format!("{}:8080", t.pod_ip(1)).replace(
        ':',
        match mode {
            Mode::Nftables => "/",
            Mode::Iptables => ":",
        },
    );
    drop(start(&[(0, NODE), (1, NODE)]));
    assert!(rules(mode, &t).contains(&gone), "{gone} programmed");
    let mut p = start(&[(0, NODE)]);
    std::thread::sleep(Duration::from_millis(1100));
    sync(&mut p);
    let text = rules(mode, &t);
    assert!(!text.contains(&gone), "{gone} left behind after a restart:\n{text}");
    assert_eq!(served_by(&t.pods[1], &format!("{vip}:80")), format!("{}:8080", t.pod_ip(0)));
}

fn masquerade_rules(mode: Mode) {
    let t = mode.node("mq", 2);
    serve_tcp(&t.pods[0], &t.pod_ip(0), 8080);
    let vip = format!("{}:80", t.service_ip(18));
    let np = format!("{}:30084", t.node_ip());
    let source = |ns: &Netns, addr: &str| match tcp(ns, addr, WAIT) {
        Reply::From { source, .. } => source,
        other => panic!("{addr} from {}: {other:?}", ns.name),
    };
    let run = |o: Opts| {
        let mut p = proxier(mode, &t, &o);
        p.on_service(
            None,
            Some(&svc(
                "m",
                json!({"type": "NodePort", "clusterIP": t.service_ip(18),
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30084}]}),
            )),
        );
        p.on_endpoint_slice(&slice("m", &eps(&t, &[(0, NODE)]), &[("http", 8080, "TCP")]), false);
        sync(&mut p);
        p
    };
    // clusterCIDR: traffic from outside it is masqueraded, pod traffic is not.
    let p = run(Opts { cluster_cidr: Some(t.pod_cidr()), ..Opts::default() });
    assert_eq!(source(&t.pods[1], &vip), t.pod_ip(1));
    assert_eq!(source(&t.client, &vip), t.bridge_ip());
    assert_eq!(source(&t.client, &np), t.bridge_ip(), "NodePort (Cluster policy)");
    drop(p);
    // masqueradeAll: everything is.
    let p = run(Opts { masquerade_all: true, ..Opts::default() });
    assert_eq!(source(&t.pods[1], &vip), t.bridge_ip());
    drop(p);
    // Neither: ClusterIP traffic keeps its source.
    let _p = run(Opts::default());
    assert_eq!(source(&t.client, &vip), t.client_ip());
    assert_eq!(source(&t.pods[1], &vip), t.pod_ip(1));
}

/// Each scenario as a test in each mode (`nftables::x`, `iptables::x`).
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod nftables {
            $(
                #[test]
                #[ignore = "needs root: run hack/test.sh"]
                fn $name() {
                    super::$name(super::Mode::Nftables)
                }
            )*
        }
        mod iptables {
            $(
                #[test]
                #[ignore = "needs root: run hack/test.sh"]
                fn $name() {
                    super::$name(super::Mode::Iptables)
                }
            )*
        }
    };
}

both_modes!(
    session_affinity,
    external_policy_local,
    internal_policy_local,
    both_policies_local,
    external_and_load_balancer_ips,
    udp_endpoint_change,
    hairpin,
    multiple_named_ports,
    restart_keeps_established_flows,
    restart_removes_stale_rules,
    masquerade_rules,
);
