//! `$(VAR)` expansion of command and args, checked against a port of upstream's
//! `third_party/forked/golang/expansion.Expand`. Input: `NAME=value` lines up to the first empty
//! line define the variables; the rest is the string to expand.
//!
//! The same input as a volume mount's `subPathExpr`: never a panic, and what it accepts is a
//! relative path without `..` components, equal to the expansion when every variable is set.
//!
//! One deliberate difference: upstream appends `$` plus the next *byte* after a lone `$`, which
//! splits a multi-byte UTF-8 character; the reference keeps the character whole, as the kubelet.
#![no_main]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::VolumeMount;
use kubelet::kuberuntime::env::expand;
use kubelet::kuberuntime::sub_path::mount_sub_path;
use libfuzzer_sys::fuzz_target;

/// Upstream's algorithm, operating on bytes as the Go code does.
fn reference(input: &str, vars: &BTreeMap<String, String>) -> String {
    let b = input.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.extend_from_slice(&b[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push(b'$');
                    1
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        match vars.get(name) {
                            Some(v) => out.extend_from_slice(v.as_bytes()),
                            None => out.extend_from_slice(format!("$({name})").as_bytes()),
                        }
                        end + 2
                    }
                    None => {
                        out.extend_from_slice(b"$(");
                        1
                    }
                },
                _ => {
                    let c = rest.chars().next().expect("non-empty");
                    out.push(b'$');
                    out.extend_from_slice(c.to_string().as_bytes());
                    c.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.extend_from_slice(&b[checkpoint.min(b.len())..]);
    String::from_utf8(out).expect("reference keeps UTF-8")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (defs, input) = text.split_once("\n\n").unwrap_or(("", text));
    let vars: BTreeMap<String, String> =
        defs.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let got = expand(input, &vars);
    assert_eq!(got, reference(input, &vars), "input {input:?} vars {vars:?}");
    if !input.contains('$') {
        assert_eq!(got, input);
    }
    let mount = VolumeMount { name: "v".into(), mount_path: "/m".into(), sub_path_expr: Some(input.to_string()), ..Default::default() };
    if let Ok(Some(sub)) = mount_sub_path(&mount, &vars) {
        assert!(!sub.starts_with('/') && !sub.split('/').any(|p| p == ".."), "{sub:?} from {input:?}");
        assert_eq!(sub, got, "accepted expansions are the plain expansion");
    }
});
