//! Whether an exited container runs again (upstream `ContainerShouldRestart`, with the
//! container restart rules on by default since 1.35): the container's `restartPolicyRules`
//! (first rule whose exit codes match decides), then its own `restartPolicy`, then the pod's.

use k8s_openapi::api::core::v1::Container;

/// Whether `container`, which exited with `exit_code`, is restarted in a pod whose
/// `restartPolicy` is `pod_policy` (`Always` when unset).
pub fn container_should_restart(container: &Container, pod_policy: Option<&str>, exit_code: i32) -> bool {
    if let Some(own) = container.restart_policy.as_deref() {
        // Other actions (RestartAllContainers, behind its own gate) fall to the container's policy.
        if matching_rule_action(container, exit_code) == Some("Restart") {
            return true;
        }
        match own {
            "Always" => return true,
            "OnFailure" => return exit_code != 0,
            "Never" => return false,
            _ => {}
        }
    }
    match pod_policy.unwrap_or("Always") {
        "OnFailure" => exit_code != 0,
        "Never" => false,
        _ => true,
    }
}

/// The action of the first rule whose exit-code condition matches.
fn matching_rule_action(container: &Container, exit_code: i32) -> Option<&str> {
    container.restart_policy_rules.iter().flatten().find_map(|rule| {
        let codes = rule.exit_codes.as_ref()?;
        let listed = codes.values.iter().flatten().any(|v| *v == exit_code);
        let matched = match codes.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        matched.then_some(rule.action.as_str())
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerRestartRule, ContainerRestartRuleOnExitCodes};

    use super::*;

    fn container(own: Option<&str>, rules: &[(&str, &[i32])]) -> Container {
        Container {
            restart_policy: own.map(str::to_owned),
            restart_policy_rules: (!rules.is_empty()).then(|| {
                rules
                    .iter()
                    .map(|(op, values)| ContainerRestartRule {
                        action: "Restart".into(),
                        exit_codes: Some(ContainerRestartRuleOnExitCodes { operator: (*op).into(), values: Some(values.to_vec()) }),
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_policy_without_a_container_policy() {
        let c = container(None, &[]);
        assert!(container_should_restart(&c, None, 0));
        assert!(container_should_restart(&c, Some("Always"), 0));
        assert!(container_should_restart(&c, Some("OnFailure"), 1));
        assert!(!container_should_restart(&c, Some("OnFailure"), 0));
        assert!(!container_should_restart(&c, Some("Never"), 1));
    }

    #[test]
    fn container_policy_overrides_the_pod() {
        assert!(!container_should_restart(&container(Some("Never"), &[]), Some("Always"), 1));
        assert!(container_should_restart(&container(Some("Always"), &[]), Some("Never"), 0));
        assert!(container_should_restart(&container(Some("OnFailure"), &[]), Some("Never"), 2));
    }

    #[test]
    fn rules_match_exit_codes_in_order() {
        let c = container(Some("Never"), &[("In", &[42, 43])]);
        assert!(container_should_restart(&c, Some("Never"), 42));
        assert!(!container_should_restart(&c, Some("Never"), 1));
        let c = container(Some("Never"), &[("NotIn", &[0])]);
        assert!(container_should_restart(&c, Some("Always"), 3));
        assert!(!container_should_restart(&c, Some("Always"), 0));
        // Rules are ignored without a container-level policy (the API requires one).
        let mut c = container(None, &[("In", &[5])]);
        c.restart_policy = None;
        assert!(!container_should_restart(&c, Some("Never"), 5));
    }
}
