//! What `knode join` reads from outside: the `cluster-info` ConfigMap (a kubeconfig and its
//! detached JWS, from a server not yet trusted), systemd unit files and environment files, and
//! the cluster's KubeletConfiguration. Any bytes give a result or a typed error, never a panic.
#![no_main]

use std::collections::BTreeMap;

use knode_join::layout::Layout;
use knode_join::token::BootstrapToken;
use knode_join::{discovery, files, unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Sections separated by NUL: kubeconfig, signature, unit, environment file, kubelet config.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let (kubeconfig, jws, unit_text, env_file, config) = (next(), next(), next(), next(), next());

    let token = BootstrapToken::parse("abcdef.0123456789abcdef").expect("a valid token");
    let data = BTreeMap::from([("kubeconfig".to_owned(), kubeconfig.clone()), ("jws-kubeconfig-abcdef".to_owned(), jws)]);
    if let Ok(info) = discovery::verify(&data, &token) {
        let _ = discovery::check_pins(&info, &["sha256:".to_owned() + &"0".repeat(64)]);
    }
    let _ = discovery::ca_cert_hashes(kubeconfig.as_bytes());
    let _ = discovery::parse_pin(&kubeconfig);
    let _ = BootstrapToken::parse(&kubeconfig);

    let _ = unit::exec_start(&[&unit_text], |_| Some(env_file.clone()));
    let _ = unit::parse_environment_file(&env_file);

    let _ = files::kubelet_config(Some(&config), "unix:///run/containerd/containerd.sock", &Layout::new("/tmp/r"));
    let _ = Layout::new("/tmp/r").rewrite(&config);
});
