//! A test "node" for service-behaviour tests: a node network namespace
//! with a Linux bridge of "pods" (each its own namespace, default route via
//! the bridge) and an external client on a second link (default route via
//! the node). The node routes nowhere else. Addresses: pods
//! `198.18.<net>.10+i/24`, bridge `198.18.<net>.1`, node IP
//! `198.18.<net+1>.1`, client `198.18.<net+1>.2`, services `198.19.<net>.*`
//! (`net` in 144..=158: everything stays in 198.18.144.0/20). As a CNI
//! bridge and the kubelet would, the bridge ports have hairpin mode on and
//! the node has `bridge-nf-call-iptables=1` and IP forwarding.
//! Servers answer `"<endpoint> <source-ip>"` so tests see both which
//! endpoint served and which source address it saw.
#![allow(dead_code)]

pub mod traffic;

use std::collections::BTreeMap;
use std::process::Command;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use crate::support::{Netns, sh};

/// The node namespace, its pods and the external client; deleted on drop.
pub struct Node {
    pub node: Netns,
    pub pods: Vec<Netns>,
    pub client: Netns,
    pub net: u8,
}

impl Node {
    /// A node with `pods` pod namespaces on bridge `kbr0`.
    pub fn new(tag: &str, net: u8, pods: usize) -> Node {
        assert!((144..=158).contains(&net), "service-behaviour tests live in 198.18.144.0/20");
        let node = Netns::new(&format!("N{tag}"));
        let client = Netns::new(&format!("C{tag}"));
        for (k, v) in [("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0")] {
            node.exec(&["sysctl", "-qw", &format!("{k}={v}")]);
        }
        // br_netfilter: bridged pod-to-pod replies must see the service DNAT.
        let _ =
            Command::new("ip").args(["netns", "exec", &node.name, "sysctl", "-qw"]).arg("net.bridge.bridge-nf-call-iptables=1").output();
        node.exec(&["ip", "link", "add", "kbr0", "type", "bridge"]);
        node.exec(&["ip", "addr", "add", &format!("198.18.{net}.1/24"), "dev", "kbr0"]);
        node.exec(&["ip", "link", "set", "kbr0", "up"]);
        let mut out = Vec::new();
        for i in 0..pods {
            let pod = Netns::new(&format!("P{i}{tag}"));
            let host_if = format!("vp{i}");
            sh(&["ip", "link", "add", &host_if, "netns", &node.name, "type", "veth", "peer", "name", "eth0", "netns", &pod.name]);
            node.exec(&["ip", "link", "set", &host_if, "master", "kbr0"]);
            // What the kubelet's hairpin-veth mode does: a pod may reach itself.
            node.exec(&["ip", "link", "set", &host_if, "type", "bridge_slave", "hairpin", "on"]);
            node.exec(&["ip", "link", "set", &host_if, "up"]);
            pod.exec(&["ip", "addr", "add", &format!("198.18.{net}.{}/24", 10 + i), "dev", "eth0"]);
            pod.exec(&["ip", "link", "set", "eth0", "up"]);
            pod.exec(&["ip", "route", "add", "default", "via", &format!("198.18.{net}.1")]);
            out.push(pod);
        }
        let ext = net + 1;
        sh(&["ip", "link", "add", "ext0", "netns", &node.name, "type", "veth", "peer", "name", "eth0", "netns", &client.name]);
        node.exec(&["ip", "addr", "add", &format!("198.18.{ext}.1/24"), "dev", "ext0"]);
        node.exec(&["ip", "link", "set", "ext0", "up"]);
        client.exec(&["ip", "addr", "add", &format!("198.18.{ext}.2/24"), "dev", "eth0"]);
        client.exec(&["ip", "link", "set", "eth0", "up"]);
        client.exec(&["ip", "route", "add", "default", "via", &format!("198.18.{ext}.1")]);
        // Locally originated service traffic needs a route before DNAT rewrites it.
        node.exec(&["ip", "route", "add", &format!("198.19.{net}.0/24"), "dev", "kbr0"]);
        Node { node, pods: out, client, net }
    }

    pub fn pod_ip(&self, i: usize) -> String {
        format!("198.18.{}.{}", self.net, 10 + i)
    }

    /// The bridge's address: what masqueraded pod-network traffic comes from.
    pub fn bridge_ip(&self) -> String {
        format!("198.18.{}.1", self.net)
    }

    pub fn node_ip(&self) -> String {
        format!("198.18.{}.1", self.net + 1)
    }

    pub fn client_ip(&self) -> String {
        format!("198.18.{}.2", self.net + 1)
    }

    pub fn pod_cidr(&self) -> String {
        format!("198.18.{}.0/24", self.net)
    }

    /// Service address `198.19.<net>.<host>`.
    pub fn service_ip(&self, host: u8) -> String {
        format!("198.19.{}.{host}", self.net)
    }
}

/// One EndpointSlice port: `(name, port, protocol)`.
pub type SlicePort<'a> = (&'a str, u16, &'a str);

/// An IPv4 EndpointSlice for `ns/svc` with `endpoints` `(ip, nodeName)` and `ports`.
pub fn slice(svc: &str, endpoints: &[(String, &str)], ports: &[SlicePort<'_>]) -> EndpointSlice {
    let eps: Vec<serde_json::Value> = endpoints.iter().map(|(ip, node)| json!({"addresses": [ip], "nodeName": node})).collect();
    let ports: Vec<serde_json::Value> =
        ports.iter().map(|(name, port, proto)| json!({"name": name, "port": port, "protocol": proto})).collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": format!("{svc}-1"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": ports,
    }))
    .unwrap()
}

/// Parses the JSON body of a health-check answer.
pub fn json_body(response: &str) -> BTreeMap<String, serde_json::Value> {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}
