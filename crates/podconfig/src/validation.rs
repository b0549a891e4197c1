//! Node-side validation of static pods: a reduced upstream `ValidatePod`.
//!
//! Checks what a kubelet needs to run a pod safely: names, containers, images, ports,
//! environment variable names, restart/DNS/pull policies, grace period, volume references
//! and resource quantities. Error text follows upstream `field.Error`, e.g.
//! `spec.containers[1].name: Invalid value: "Web_1": a lowercase RFC 1123 label must ...`.
//! Pure functions: no I/O, no defaults applied here.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const ENV_VAR_NAME_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";
const NON_NEGATIVE_MSG: &str = "must be greater than or equal to 0";

/// What is wrong with one field (upstream `field.ErrorType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The field must be set.
    Required,
    /// The value is malformed; `value` is rendered as upstream does (strings quoted).
    Invalid {
        /// The offending value, as upstream renders it.
        value: String,
    },
    /// The value is used twice where it must be unique.
    Duplicate {
        /// The repeated value, quoted.
        value: String,
    },
    /// The value is not one of a fixed set.
    NotSupported {
        /// The value given, quoted.
        value: String,
        /// The values the field accepts, in upstream's order.
        supported: Vec<&'static str>,
    },
    /// The value refers to something that does not exist.
    NotFound {
        /// The reference that resolves to nothing, quoted.
        value: String,
    },
}

/// One validation failure, naming the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The path of the field, e.g. `spec.containers[1].name`.
    pub field: String,
    /// The kind of failure and the offending value.
    pub kind: FieldErrorKind,
    /// Why, when there is more to say.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match &self.kind {
            FieldErrorKind::Required => f.write_str("Required value")?,
            FieldErrorKind::Invalid { value } => write!(f, "Invalid value: {value}")?,
            FieldErrorKind::Duplicate { value } => write!(f, "Duplicate value: {value}")?,
            FieldErrorKind::NotFound { value } => write!(f, "Not found: {value}")?,
            FieldErrorKind::NotSupported { value, supported } => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                write!(f, "Unsupported value: {value}: supported values: {}", list.join(", "))?
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every validation failure of a pod; displayed like upstream's aggregate (`[a, b]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        match parts.as_slice() {
            [one] => f.write_str(one),
            _ => write!(f, "[{}]", parts.join(", ")),
        }
    }
}

/// Validates a (defaulted) pod the way the kubelet validates static pods.
pub fn validate_pod(pod: &Pod) -> Result<(), ValidationErrors> {
    let mut v = Validator::default();
    match pod.metadata.name.as_deref().unwrap_or_default() {
        "" => v.push("metadata.name", FieldErrorKind::Required, "name or generateName is required"),
        name => v.dns_name("metadata.name", name, 253, is_dns1123_subdomain, DNS1123_SUBDOMAIN_MSG),
    }
    match pod.metadata.namespace.as_deref().unwrap_or_default() {
        "" => v.push("metadata.namespace", FieldErrorKind::Required, ""),
        ns => v.dns_name("metadata.namespace", ns, 63, is_dns1123_label, DNS1123_LABEL_MSG),
    }
    let Some(spec) = pod.spec.as_ref() else {
        v.push("spec.containers", FieldErrorKind::Required, "");
        return v.finish();
    };
    let mut volumes = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        match volume.name.as_str() {
            "" => v.push(&path, FieldErrorKind::Required, ""),
            name if !volumes.insert(name) => v.push(&path, FieldErrorKind::Duplicate { value: quote(name) }, ""),
            name => v.dns_name(&path, name, 63, is_dns1123_label, DNS1123_LABEL_MSG),
        }
    }
    if spec.containers.is_empty() {
        v.push("spec.containers", FieldErrorKind::Required, "");
    }
    let mut names = BTreeSet::new();
    let init = spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
    let regular = spec.containers.iter().enumerate().map(|(i, c)| (format!("spec.containers[{i}]"), c));
    for (path, container) in init.chain(regular) {
        v.container(&path, container, &mut names, &volumes);
    }
    v.one_of("spec.restartPolicy", spec.restart_policy.as_deref(), &["Always", "OnFailure", "Never"]);
    let dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    v.one_of("spec.dnsPolicy", spec.dns_policy.as_deref(), &dns_policies);
    if let Some(grace) = spec.termination_grace_period_seconds.filter(|g| *g < 0) {
        v.push("spec.terminationGracePeriodSeconds", FieldErrorKind::Invalid { value: grace.to_string() }, NON_NEGATIVE_MSG);
    }
    v.finish()
}

#[derive(Default)]
struct Validator(Vec<FieldError>);

impl Validator {
    fn push(&mut self, field: &str, kind: FieldErrorKind, detail: &str) {
        self.0.push(FieldError { field: field.to_owned(), kind, detail: detail.to_owned() });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(ValidationErrors(self.0)) }
    }

    fn invalid(&mut self, field: &str, value: &str, detail: &str) {
        self.push(field, FieldErrorKind::Invalid { value: quote(value) }, detail);
    }

    fn dns_name(&mut self, field: &str, value: &str, max: usize, ok: fn(&str) -> bool, msg: &str) {
        if value.len() > max {
            self.invalid(field, value, &format!("must be no more than {max} characters"));
        }
        if !ok(value) {
            self.invalid(field, value, msg);
        }
    }

    fn one_of(&mut self, field: &str, value: Option<&str>, supported: &[&'static str]) {
        match value.unwrap_or_default() {
            "" => self.push(field, FieldErrorKind::Required, ""),
            value if !supported.contains(&value) => {
                let kind = FieldErrorKind::NotSupported { value: quote(value), supported: supported.to_vec() };
                self.push(field, kind, "");
            }
            _ => {}
        }
    }

    fn container<'a>(&mut self, path: &str, c: &'a Container, names: &mut BTreeSet<&'a str>, volumes: &BTreeSet<&str>) {
        let name_path = format!("{path}.name");
        match c.name.as_str() {
            "" => self.push(&name_path, FieldErrorKind::Required, ""),
            name if !names.insert(name) => self.push(&name_path, FieldErrorKind::Duplicate { value: quote(name) }, ""),
            name => self.dns_name(&name_path, name, 63, is_dns1123_label, DNS1123_LABEL_MSG),
        }
        let image = c.image.as_deref().unwrap_or_default();
        if image.is_empty() {
            self.push(&format!("{path}.image"), FieldErrorKind::Required, "");
        } else if image.trim() != image {
            self.invalid(&format!("{path}.image"), image, "must not have leading or trailing whitespace");
        }
        self.one_of(&format!("{path}.imagePullPolicy"), c.image_pull_policy.as_deref(), &["Always", "IfNotPresent", "Never"]);
        let tmp = c.termination_message_policy.as_deref();
        self.one_of(&format!("{path}.terminationMessagePolicy"), tmp, &["File", "FallbackToLogsOnError"]);
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let port_path = format!("{path}.ports[{i}]");
            if !(1..=65535).contains(&port.container_port) {
                let value = port.container_port.to_string();
                self.push(&format!("{port_path}.containerPort"), FieldErrorKind::Invalid { value }, PORT_RANGE_MSG);
            }
            if let Some(host_port) = port.host_port.filter(|p| *p != 0 && !(1..=65535).contains(p)) {
                let value = host_port.to_string();
                self.push(&format!("{port_path}.hostPort"), FieldErrorKind::Invalid { value }, PORT_RANGE_MSG);
            }
            self.one_of(&format!("{port_path}.protocol"), port.protocol.as_deref(), &["SCTP", "TCP", "UDP"]);
        }
        for (i, env) in c.env.iter().flatten().enumerate() {
            let env_path = format!("{path}.env[{i}].name");
            if env.name.is_empty() {
                self.push(&env_path, FieldErrorKind::Required, "");
            } else if !is_env_var_name(&env.name) {
                self.invalid(&env_path, &env.name, ENV_VAR_NAME_MSG);
            }
        }
        for (i, mount) in c.volume_mounts.iter().flatten().enumerate() {
            let mount_path = format!("{path}.volumeMounts[{i}]");
            if !volumes.contains(mount.name.as_str()) {
                self.push(&format!("{mount_path}.name"), FieldErrorKind::NotFound { value: quote(&mount.name) }, "");
            }
            if mount.mount_path.is_empty() {
                self.push(&format!("{mount_path}.mountPath"), FieldErrorKind::Required, "");
            }
        }
        self.resources(path, c);
    }

    fn resources(&mut self, path: &str, c: &Container) {
        let Some(resources) = c.resources.as_ref() else {
            return;
        };
        let mut parse =
            |kind: &str, list: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
                let mut parsed = Vec::new();
                for (name, quantity) in list.iter().flatten() {
                    let field = format!("{path}.resources.{kind}[{name}]");
                    match kubelet_config::quantity::parse(&quantity.0).ok().map(|q| q.as_f64()) {
                        None => {
                            let detail =
                                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".to_string();
                            self.invalid(&field, &quantity.0, &detail);
                        }
                        Some(value) if value < 0.0 => self.invalid(&field, &quantity.0, NON_NEGATIVE_MSG),
                        Some(value) => parsed.push((name.clone(), quantity.0.clone(), value)),
                    }
                }
                parsed
            };
        let limits = parse("limits", &resources.limits);
        let requests = parse("requests", &resources.requests);
        for (name, text, value) in requests {
            if let Some((_, limit_text, _)) = limits.iter().find(|(n, _, limit)| *n == name && value > *limit) {
                let detail = format!("must be less than or equal to {name} limit of {limit_text}");
                self.invalid(&format!("{path}.resources.requests"), &text, &detail);
            }
        }
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty() && bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum) && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

fn is_env_var_name(s: &str) -> bool {
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    s.as_bytes().first().is_some_and(|b| !b.is_ascii_digit() && ok(b)) && s.as_bytes().iter().all(ok)
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
