//! The host's `resolv.conf`: parsed into nameservers, search domains and options. Never panics, and
//! every value is one whitespace-free field of the input. A `#` after a value is not a comment
//! (only a line that starts with one is, for glibc and upstream's `parseResolvConf` alike), so a
//! value may hold one.
#![no_main]

use kubelet::kuberuntime::dns::parse_resolv_conf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dns = parse_resolv_conf(text);
    let nameserver_lines = text.lines().filter(|l| l.split_whitespace().next() == Some("nameserver")).count();
    assert!(dns.servers.len() <= nameserver_lines, "more servers than nameserver lines");
    for v in dns.servers.iter().chain(&dns.searches).chain(&dns.options) {
        assert!(!v.is_empty(), "empty value");
        assert!(!v.chars().any(char::is_whitespace), "value {v:?} holds whitespace");
        assert!(text.contains(v.as_str()), "value {v:?} is not from the input");
    }
});
