//! Flags for the node's place in the cluster: registration and status
//! reporting, talking to the API server and recording events, where static
//! pods come from and how often they are synced, and feature gates. Data
//! only, like the rest of the table.

use super::ConfigFlag;
use crate::flag_values::*;

/// Registration, API server, pod source and feature-gate flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!("event-burst", value, "Maximum size of a bursty event records", |c, v, f| c.event_burst = parse_i32(v)?),
        flag!("event-qps", value, "QPS to limit event creations", |c, v, f| c.event_record_qps = parse_i32(v)?),
        flag!("feature-gates", value, "key=true|false pairs that describe feature gates", |c, v, f| c
            .feature_gates
            .extend(parse_bool_map(v)?)),
        flag!("file-check-frequency", value, "Duration between checking config files for new data", |c, v, f| c.file_check_frequency =
            parse_duration(v)?),
        flag!("http-check-frequency", value, "Duration between checking http for new data", |c, v, f| c.http_check_frequency =
            parse_duration(v)?),
        flag!("kube-api-burst", value, "Burst to use while talking with kubernetes apiserver", |c, v, f| c.kube_api_burst = parse_i32(v)?),
        flag!("kube-api-content-type", value, "Content type of requests sent to apiserver", |c, v, f| c.content_type = v.into()),
        flag!("kube-api-qps", value, "QPS to use while talking with kubernetes apiserver", |c, v, f| c.kube_api_qps = parse_i32(v)?),
        flag!("manifest-url", value, "URL for accessing additional Pod specifications to run", |c, v, f| c.static_pod_url = v.into()),
        flag!("manifest-url-header", value, "HTTP headers for --manifest-url (a:hello,b:again)", |c, v, f| {
            if f {
                c.static_pod_url_header.clear();
            }
            parse_colon_multimap(v, &mut c.static_pod_url_header)?
        }),
        flag!("node-status-max-images", value, "Maximum number of images to report in Node.Status.Images", |c, v, f| c
            .node_status_max_images =
            parse_i32(v)?),
        flag!("node-status-update-frequency", value, "How often kubelet posts node status to master", |c, v, f| c
            .node_status_update_frequency =
            parse_duration(v)?),
        flag!("pod-manifest-path", value, "Path to the directory containing static pod files to run", |c, v, f| c.static_pod_path =
            v.into()),
        flag!(current "provider-id", value, "Unique identifier for identifying the node in a machine database", |c, v, f| c.provider_id = v.into()),
        flag!("register-node", bool, "Register the node with the apiserver", |c, v, f| c.register_node = parse_bool(v)?),
        flag!("register-with-taints", value, "Register the node with the given taints (<key>=<value>:<effect>)", |c, v, f| {
            if f {
                c.register_with_taints.clear();
            }
            c.register_with_taints.extend(parse_taints(v)?)
        }),
        flag!("runonce", bool, "Exit after spawning pods from static pod files or remote urls", |c, v, f| c.run_once = parse_bool(v)?),
        flag!("sync-frequency", value, "Max period between synchronizing running containers and config", |c, v, f| c.sync_frequency =
            parse_duration(v)?),
    ]
}
