//! A `KubeletConfiguration` file: parse, default and validate; and the same bytes as a
//! `CredentialProviderConfig` (`--image-credential-provider-config`). Must return an error,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kubelet_config::parse_config_bytes("/var/lib/kubelet/config.yaml", data);
    let _ = kubelet_config::credential_provider::parse_bytes(std::path::Path::new("/etc/kubernetes/credential-provider.yaml"), data);
});
