//! Label syntax (qualified names, label values) and upstream's `--node-labels`
//! policy: a kubelet may only set labels in the `kubernetes.io` / `k8s.io`
//! namespaces from an allow-list, so a node cannot give itself e.g.
//! `node-role.kubernetes.io/master`. Pure functions; no I/O.

use std::collections::{BTreeMap, BTreeSet};

/// Label namespaces a kubelet may use (and their subdomains).
pub const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// Individual `kubernetes.io` labels a kubelet may set.
pub const KUBELET_LABELS: &[&str] = &[
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

fn namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn is_kubernetes_label(key: &str) -> bool {
    let ns = namespace(key);
    ns == "kubernetes.io" || ns.ends_with(".kubernetes.io") || ns == "k8s.io" || ns.ends_with(".k8s.io")
}

/// Whether upstream lets a kubelet set `key` on its own Node.
pub fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = namespace(key);
    KUBELET_LABEL_NAMESPACES.iter().any(|allowed| ns == *allowed || ns.ends_with(&format!(".{allowed}")))
}

/// Upstream's check of `--node-labels`; the error text is upstream's, word for word.
pub fn validate_node_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    let unknown: BTreeSet<&str> = labels.keys().map(String::as_str).filter(|k| is_kubernetes_label(k) && !is_kubelet_label(k)).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [{}]\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the specifically allowed set ({})",
            unknown.into_iter().collect::<Vec<_>>().join(" "),
            KUBELET_LABEL_NAMESPACES.join(", "),
            KUBELET_LABELS.join(", ")
        ));
    }
    let mut problems = Vec::new();
    for (k, v) in labels {
        if let Err(e) = check_qualified_name(k) {
            problems.push(format!("'{k}' - {e}"));
        }
        if let Err(e) = check_label_value(v) {
            problems.push(format!("'{v}' - {e}"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("invalid node labels: {}", problems.join("; "))) }
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// `[prefix/]name`, as `validation.IsQualifiedName`.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return Err("prefix part must be a lowercase RFC 1123 subdomain".to_string());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".to_string());
    }
    if !is_name_part(name) {
        return Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                .to_string(),
        );
    }
    Ok(())
}

/// A label value, as `validation.IsValidLabelValue` (empty is allowed).
pub fn check_label_value(v: &str) -> Result<(), String> {
    if v.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !is_name_part(v) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn allows_kubelet_labels() {
        let l = labels(&[
            ("kubernetes.io/hostname", "n1"),
            ("node.kubernetes.io/exclude-from-external-load-balancers", ""),
            ("kubelet.kubernetes.io/x", "y"),
            ("topology.kubernetes.io/zone", "a"),
            ("example.com/role", "db"),
            ("plain", "v"),
        ]);
        assert_eq!(validate_node_labels(&l), Ok(()));
    }

    #[test]
    fn refuses_node_role_with_upstream_message() {
        let err = validate_node_labels(&labels(&[("node-role.kubernetes.io/master", "linux-node1")])).unwrap_err();
        assert!(err.starts_with(
            "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/master]\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, node.kubernetes.io) or be in the specifically allowed set (beta.kubernetes.io/arch, "
        ), "{err}");
        assert!(validate_node_labels(&labels(&[("foo.k8s.io/x", "1")])).is_err());
    }

    #[test]
    fn refuses_malformed_labels() {
        let err = validate_node_labels(&labels(&[("bad key", "v")])).unwrap_err();
        assert!(err.starts_with("invalid node labels: 'bad key'"), "{err}");
        assert!(validate_node_labels(&labels(&[("k", "-bad")])).is_err());
    }
}
