//! Request → authorization attributes, as upstream's `pkg/kubelet/server/auth.go` maps them
//! (`GetRequestAttributes`): every kubelet endpoint is a subresource of the node object.
//!
//! Pure: a method and a path in, [`RequestAttributes`] out; plus the exact 401/403/500 texts
//! the kubelet answers with.

use kubelet_api::auth_review::{RequestAttributes, UserInfo};

/// The API verb for an HTTP method; `""` for methods the API has no verb for (upstream sends
/// those to the authorizer with an empty verb, which RBAC never allows).
pub fn verb_for_method(method: &str) -> &'static str {
    match method.to_ascii_uppercase().as_str() {
        "POST" => "create",
        "GET" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
}

/// `path` is `prefix` or below it (`/stats`, `/stats/summary`), never `/statsfoo`.
fn is_subpath(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The `nodes` subresource a request path is authorized as.
pub fn subresource_for_path(path: &str) -> &'static str {
    if is_subpath(path, "/stats/") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs/") {
        "log"
    } else if is_subpath(path, "/spec/") {
        "spec"
    } else {
        "proxy"
    }
}

/// The attributes a request on node `node_name` is authorized with.
pub fn request_attributes(method: &str, path: &str, node_name: &str) -> RequestAttributes {
    RequestAttributes {
        verb: verb_for_method(method).to_string(),
        namespace: String::new(),
        api_group: String::new(),
        api_version: "v1".to_string(),
        resource: "nodes".to_string(),
        subresource: subresource_for_path(path).to_string(),
        name: node_name.to_string(),
    }
}

/// The 403 body: `Forbidden (user=..., verb=..., resource=nodes, subresource=...)`.
pub fn forbidden_message(user: &UserInfo, a: &RequestAttributes) -> String {
    format!("Forbidden (user={}, verb={}, resource={}, subresource={})", user.name, a.verb, a.resource, a.subresource)
}

/// The 500 body when the authorizer could not decide.
pub fn authorization_error_message(user: &UserInfo, a: &RequestAttributes) -> String {
    format!("Authorization error (user={}, verb={}, resource={}, subresource={})", user.name, a.verb, a.resource, a.subresource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_http_methods() {
        for (m, v) in [("GET", "get"), ("post", "create"), ("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete"), ("HEAD", ""), ("OPTIONS", "")] {
            assert_eq!(verb_for_method(m), v, "{m}");
        }
    }

    #[test]
    fn subresources_follow_path_prefixes() {
        for (p, s) in [
            ("/stats", "stats"),
            ("/stats/", "stats"),
            ("/stats/summary", "stats"),
            ("/statsfoo", "proxy"),
            ("/metrics", "metrics"),
            ("/metrics/cadvisor", "metrics"),
            ("/metricsx", "proxy"),
            ("/logs", "log"),
            ("/logs/syslog", "log"),
            ("/spec/", "spec"),
            ("/pods", "proxy"),
            ("/containerLogs/default/web/main", "proxy"),
            ("/exec/default/web/main", "proxy"),
            ("/portForward/default/web", "proxy"),
            ("/runningpods/", "proxy"),
            ("/healthz", "proxy"),
            ("/", "proxy"),
            ("", "proxy"),
        ] {
            assert_eq!(subresource_for_path(p), s, "{p:?}");
        }
    }

    #[test]
    fn attributes_name_the_node_and_messages_match_upstream() {
        let a = request_attributes("POST", "/exec/ns/pod/c", "node-1");
        assert_eq!(
            a,
            RequestAttributes {
                verb: "create".into(),
                api_version: "v1".into(),
                resource: "nodes".into(),
                subresource: "proxy".into(),
                name: "node-1".into(),
                ..Default::default()
            }
        );
        let user = UserInfo { name: "jane".into(), ..Default::default() };
        assert_eq!(forbidden_message(&user, &request_attributes("GET", "/stats/summary", "n")), "Forbidden (user=jane, verb=get, resource=nodes, subresource=stats)");
        assert_eq!(authorization_error_message(&user, &a), "Authorization error (user=jane, verb=create, resource=nodes, subresource=proxy)");
    }
}
