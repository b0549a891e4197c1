//! Generates the v1beta1 device plugin API: the `Registration` server (the kubelet serves it)
//! and the `DevicePlugin` client (the kubelet calls plugins), plus both other halves for tests.

fn main() {
    println!("cargo:rerun-if-changed=proto/api.proto");
    tonic_prost_build::configure()
        .btree_map(".")
        .compile_protos(&["proto/api.proto"], &["proto/"])
        .expect("compile proto/api.proto (needs protoc: set PROTOC)");
}
