//! Builders shared by the status unit tests.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

pub(crate) fn api_time_secs(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

pub(crate) fn pod_with(policy: &str, containers: &[&str], init: &[&str]) -> Pod {
    let make = |n: &&str| Container { name: n.to_string(), image: Some(format!("img-{n}")), ..Default::default() };
    Pod {
        metadata: ObjectMeta { name: Some("p".into()), namespace: Some("default".into()), uid: Some("uid-1".into()), ..Default::default() },
        spec: Some(PodSpec {
            restart_policy: Some(policy.to_string()),
            containers: containers.iter().map(make).collect(),
            init_containers: if init.is_empty() { None } else { Some(init.iter().map(make).collect()) },
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn running_status(name: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        started: Some(true),
        state: Some(ContainerState { running: Some(ContainerStateRunning { started_at: Some(api_time_secs(1)) }), ..Default::default() }),
        ..Default::default()
    }
}

pub(crate) fn exited_status(name: &str, code: i32) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        started: Some(false),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn waiting_status(name: &str, reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        started: Some(false),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: None }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
