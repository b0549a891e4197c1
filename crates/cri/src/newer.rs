//! CRI v1 fields newer than the generated messages in [`crate::api`] (the `k8s-cri` crate is
//! generated from an older `api.proto`), and how [`RemoteRuntime`](crate::RemoteRuntime) puts
//! them on the wire.
//!
//! Protobuf lets a message's fields come in any order and a repeated field's entries be
//! written one by one, so the request is the generated encoding of everything else followed by
//! each mount written with its newer fields appended. A runtime that predates a field skips
//! it, as protobuf readers skip unknown fields.

use std::collections::BTreeMap;

use prost::Message as _;
use prost::bytes::{Buf, BufMut};

use crate::api;

/// `Mount.image_sub_path` (CRI 1.33): the path inside an image volume to mount.
const MOUNT_IMAGE_SUB_PATH: u32 = 10;
/// `ContainerConfig.mounts`.
const CONTAINER_CONFIG_MOUNTS: u32 = 7;
/// `CreateContainerRequest`'s fields.
const REQUEST_POD_SANDBOX_ID: u32 = 1;
const REQUEST_CONFIG: u32 = 2;
const REQUEST_SANDBOX_CONFIG: u32 = 3;

/// What a `ContainerConfig` carries beyond [`api::ContainerConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerConfigExtras {
    /// `Mount.image_sub_path` by the mount's `container_path` (unique in a container; an
    /// index would shift when mounts are added in front, e.g. a device plugin's).
    pub image_sub_paths: BTreeMap<String, String>,
}

impl ContainerConfigExtras {
    /// True when there is nothing beyond the generated message to put on the wire.
    pub fn is_empty(&self) -> bool {
        self.image_sub_paths.is_empty()
    }
}

/// The wire form of a `CreateContainerRequest` with `extras`.
pub(crate) fn create_container_request(
    pod_sandbox_id: &str,
    mut config: api::ContainerConfig,
    sandbox_config: &api::PodSandboxConfig,
    extras: &ContainerConfigExtras,
) -> Vec<u8> {
    let mounts = std::mem::take(&mut config.mounts);
    let mut config_bytes = config.encode_to_vec();
    for mount in &mounts {
        let mut mount_bytes = mount.encode_to_vec();
        if let Some(sub_path) = extras.image_sub_paths.get(&mount.container_path).filter(|s| !s.is_empty() && mount.image.is_some()) {
            prost::encoding::string::encode(MOUNT_IMAGE_SUB_PATH, sub_path, &mut mount_bytes);
        }
        prost::encoding::bytes::encode(CONTAINER_CONFIG_MOUNTS, &mount_bytes, &mut config_bytes);
    }
    let mut out = Vec::new();
    if !pod_sandbox_id.is_empty() {
        prost::encoding::string::encode(REQUEST_POD_SANDBOX_ID, &pod_sandbox_id.to_owned(), &mut out);
    }
    prost::encoding::bytes::encode(REQUEST_CONFIG, &config_bytes, &mut out);
    prost::encoding::message::encode(REQUEST_SANDBOX_CONFIG, sandbox_config, &mut out);
    out
}

/// A message already in its wire form, sent as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Encoded(pub Vec<u8>);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent, never read.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newer mount as a current `api.proto` reader sees it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct CurrentMount {
        #[prost(string, tag = "1")]
        container_path: String,
        #[prost(message, optional, tag = "9")]
        image: Option<api::ImageSpec>,
        #[prost(string, tag = "10")]
        image_sub_path: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct CurrentConfig {
        #[prost(message, repeated, tag = "7")]
        mounts: Vec<CurrentMount>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct CurrentRequest {
        #[prost(message, optional, tag = "2")]
        config: Option<CurrentConfig>,
    }

    #[test]
    fn image_sub_paths_ride_on_their_mounts_and_the_rest_reads_as_before() {
        let image = api::ImageSpec { image: "sha256:abc".into(), ..Default::default() };
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata { name: "c".into(), attempt: 2 }),
            mounts: vec![
                api::Mount { container_path: "/etc/hosts".into(), host_path: "/h".into(), ..Default::default() },
                api::Mount { container_path: "/data".into(), readonly: true, image: Some(image.clone()), ..Default::default() },
            ],
            envs: vec![api::KeyValue { key: "A".into(), value: "b".into() }],
            ..Default::default()
        };
        let sandbox = api::PodSandboxConfig { hostname: "h".into(), ..Default::default() };
        let extras = ContainerConfigExtras {
            image_sub_paths: [("/data".to_string(), "dir/sub".to_string()), ("/etc/hosts".to_string(), "not/an/image".to_string())].into(),
        };
        let wire = create_container_request("sb1", config.clone(), &sandbox, &extras);
        let old = api::CreateContainerRequest::decode(wire.as_slice()).unwrap();
        assert_eq!(
            old,
            api::CreateContainerRequest {
                pod_sandbox_id: "sb1".into(),
                config: Some(config.clone()),
                sandbox_config: Some(sandbox.clone())
            },
            "everything else, mounts in order"
        );
        let current = CurrentRequest::decode(wire.as_slice()).unwrap().config.unwrap();
        let sub_paths: Vec<(&str, &str)> = current.mounts.iter().map(|m| (m.container_path.as_str(), m.image_sub_path.as_str())).collect();
        assert_eq!(sub_paths, [("/etc/hosts", ""), ("/data", "dir/sub")], "only image mounts carry one");
        assert_eq!(current.mounts[1].image, Some(image));
        let plain = create_container_request("sb1", config.clone(), &sandbox, &ContainerConfigExtras::default());
        assert_eq!(api::CreateContainerRequest::decode(plain.as_slice()).unwrap().config, Some(config));
        assert_eq!(Encoded(wire.clone()).encode_to_vec(), wire, "sent as it is");
    }
}
