//! Request → authorization attributes, as upstream's `pkg/kubelet/server/auth.go` maps them
//! (`GetRequestAttributes`): every kubelet endpoint is a subresource of the node object.
//!
//! Pure: a method and a path in, [`RequestAttributes`] out; plus the exact 401/403/500 texts
//! the kubelet answers with.

use kubelet_types::review::{RequestAttributes, UserInfo};

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

/// The `nodes` subresources a request path is authorized as, in the order they are tried, as
/// upstream 1.37 (fine-grained kubelet authorization, GA and always on since 1.36): `/pods`,
/// `/runningpods/`, `/healthz` and `/configz` first try their own subresource and then the
/// coarse one (`proxy`); the others have one.
pub fn subresources_for_path(path: &str) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(2);
    if is_subpath(path, "/allocatedPods") || is_subpath(path, "/pods") || is_subpath(path, "/runningpods/") {
        out.push("pods");
    } else if is_subpath(path, "/healthz") {
        out.push("healthz");
    } else if is_subpath(path, "/configz") {
        out.push("configz");
    }
    out.push(if is_subpath(path, "/stats/") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs/") {
        "log"
    } else if is_subpath(path, "/checkpoint/") {
        "checkpoint"
    } else if is_subpath(path, "/statusz") {
        "statusz"
    } else if is_subpath(path, "/flagz") {
        "configz"
    } else {
        "proxy"
    });
    out
}

/// The attributes a request on node `node_name` is authorized with, one per subresource of
/// [`subresources_for_path`]; the request is allowed when any of them is.
pub fn request_attributes(method: &str, path: &str, node_name: &str) -> Vec<RequestAttributes> {
    subresources_for_path(path)
        .into_iter()
        .map(|subresource| RequestAttributes {
            verb: verb_for_method(method).to_string(),
            namespace: String::new(),
            api_group: String::new(),
            api_version: "v1".to_string(),
            resource: "nodes".to_string(),
            subresource: subresource.to_string(),
            name: node_name.to_string(),
        })
        .collect()
}

/// The 403 body: `Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[pods proxy])`
/// and a newline, as upstream 1.37 writes it (the attributes differ only by subresource).
pub fn forbidden_message(user: &UserInfo, attrs: &[RequestAttributes]) -> String {
    let (verb, resource) = attrs.first().map(|a| (a.verb.as_str(), a.resource.as_str())).unwrap_or_default();
    let subresources: Vec<&str> = attrs.iter().map(|a| a.subresource.as_str()).collect();
    format!("Forbidden (user={}, verb={verb}, resource={resource}, subresource(s)=[{}])\n", user.name, subresources.join(" "))
}

/// The 500 body when the authorizer could not decide on `a`.
pub fn authorization_error_message(user: &UserInfo, a: &RequestAttributes) -> String {
    format!("Authorization error (user={}, verb={}, resource={}, subresource={})", user.name, a.verb, a.resource, a.subresource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_http_methods() {
        for (m, v) in
            [("GET", "get"), ("post", "create"), ("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete"), ("HEAD", ""), ("OPTIONS", "")]
        {
            assert_eq!(verb_for_method(m), v, "{m}");
        }
    }

    #[test]
    fn subresources_follow_path_prefixes() {
        for (p, s) in [
            ("/stats", &["stats"][..]),
            ("/stats/", &["stats"]),
            ("/stats/summary", &["stats"]),
            ("/statsfoo", &["proxy"]),
            ("/metrics", &["metrics"]),
            ("/metrics/cadvisor", &["metrics"]),
            ("/metricsx", &["proxy"]),
            ("/logs", &["log"]),
            ("/logs/syslog", &["log"]),
            ("/checkpoint/ns/pod/c", &["checkpoint"]),
            ("/statusz", &["statusz"]),
            ("/flagz", &["configz"]),
            ("/spec/", &["proxy"]),
            ("/pods", &["pods", "proxy"]),
            ("/pods/", &["pods", "proxy"]),
            ("/allocatedPods", &["pods", "proxy"]),
            ("/runningpods/", &["pods", "proxy"]),
            ("/runningpods", &["pods", "proxy"]),
            ("/healthz", &["healthz", "proxy"]),
            ("/healthz/syncloop", &["healthz", "proxy"]),
            ("/configz", &["configz", "proxy"]),
            ("/podsx", &["proxy"]),
            ("/containerLogs/default/web/main", &["proxy"]),
            ("/exec/default/web/main", &["proxy"]),
            ("/portForward/default/web", &["proxy"]),
            ("/", &["proxy"]),
            ("", &["proxy"]),
        ] {
            assert_eq!(subresources_for_path(p), s, "{p:?}");
        }
    }

    #[test]
    fn attributes_name_the_node_and_messages_match_upstream() {
        let a = request_attributes("POST", "/exec/ns/pod/c", "node-1");
        assert_eq!(
            a,
            vec![RequestAttributes {
                verb: "create".into(),
                api_version: "v1".into(),
                resource: "nodes".into(),
                subresource: "proxy".into(),
                name: "node-1".into(),
                ..Default::default()
            }]
        );
        let user = UserInfo { name: "jane".into(), ..Default::default() };
        assert_eq!(
            forbidden_message(&user, &request_attributes("GET", "/stats/summary", "n")),
            "Forbidden (user=jane, verb=get, resource=nodes, subresource(s)=[stats])\n"
        );
        assert_eq!(
            forbidden_message(&user, &request_attributes("GET", "/pods", "n")),
            "Forbidden (user=jane, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"
        );
        assert_eq!(
            authorization_error_message(&user, &a[0]),
            "Authorization error (user=jane, verb=create, resource=nodes, subresource=proxy)"
        );
    }
}
