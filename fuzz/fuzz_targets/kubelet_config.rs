//! A `KubeletConfiguration` file: parse, default and validate. Must return an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kubelet_config::parse_config_bytes("/var/lib/kubelet/config.yaml", data);
});
