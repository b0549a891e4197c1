//! Ephemeral containers (`kubectl debug`): added to a running pod through the API's
//! `ephemeralcontainers` subresource, started once each (never restarted), optionally in the
//! process namespace of a target container.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};

/// An ephemeral container as a container spec (the fields they share), for the config
/// builders; its target is [`EphemeralContainer::target_container_name`].
pub fn as_container(ec: &EphemeralContainer) -> Container {
    let ec = ec.clone();
    Container {
        args: ec.args,
        command: ec.command,
        env: ec.env,
        env_from: ec.env_from,
        image: ec.image,
        image_pull_policy: ec.image_pull_policy,
        lifecycle: ec.lifecycle,
        liveness_probe: ec.liveness_probe,
        name: ec.name,
        ports: ec.ports,
        readiness_probe: ec.readiness_probe,
        resize_policy: ec.resize_policy,
        resources: ec.resources,
        restart_policy: ec.restart_policy,
        restart_policy_rules: ec.restart_policy_rules,
        security_context: ec.security_context,
        startup_probe: ec.startup_probe,
        stdin: ec.stdin,
        stdin_once: ec.stdin_once,
        termination_message_path: ec.termination_message_path,
        termination_message_policy: ec.termination_message_policy,
        tty: ec.tty,
        volume_devices: ec.volume_devices,
        volume_mounts: ec.volume_mounts,
        working_dir: ec.working_dir,
    }
}

/// The pod's ephemeral containers, in spec order.
pub fn ephemeral_containers(pod: &Pod) -> &[EphemeralContainer] {
    pod.spec.as_ref().and_then(|s| s.ephemeral_containers.as_deref()).unwrap_or(&[])
}

/// The pod's ephemeral containers as container specs.
pub fn ephemeral_specs(pod: &Pod) -> Vec<Container> {
    ephemeral_containers(pod).iter().map(as_container).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_fields_carry_over() {
        let ec = EphemeralContainer {
            name: "debugger".into(),
            image: Some("busybox".into()),
            command: Some(vec!["sh".into()]),
            stdin: Some(true),
            tty: Some(true),
            target_container_name: Some("app".into()),
            ..Default::default()
        };
        let c = as_container(&ec);
        assert_eq!((c.name.as_str(), c.image.as_deref(), c.stdin, c.tty), ("debugger", Some("busybox"), Some(true), Some(true)));
        assert_eq!(c.command, Some(vec!["sh".to_string()]));
    }
}
