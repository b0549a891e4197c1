//! Flags for the kubelet's own servers: the HTTPS API (address, ports,
//! TLS, certificate rotation), the healthz endpoint, and how requests to them
//! are authenticated and authorized. Data only, like the rest of the table.

use super::{ConfigFlag, extend};
use crate::flag_values::*;

/// Serving, TLS and authn/authz flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!("address", value, "The IP address for the Kubelet to serve on", |c, v, f| c.address = parse_ip(v)?),
        flag!("anonymous-auth", bool, "Enables anonymous requests to the Kubelet server", |c, v, f| c.authentication.anonymous.enabled =
            parse_bool(v)?),
        flag!("authentication-token-webhook", bool, "Use the TokenReview API to determine authentication for bearer tokens", |c, v, f| c
            .authentication
            .webhook
            .enabled =
            parse_bool(v)?),
        flag!(
            "authentication-token-webhook-cache-ttl",
            value,
            "The duration to cache responses from the webhook token authenticator",
            |c, v, f| c.authentication.webhook.cache_ttl = parse_duration(v)?
        ),
        flag!("authorization-mode", value, "Authorization mode for Kubelet server: AlwaysAllow or Webhook", |c, v, f| c
            .authorization
            .mode = v.into()),
        flag!(
            "authorization-webhook-cache-authorized-ttl",
            value,
            "The duration to cache 'authorized' responses from the webhook authorizer",
            |c, v, f| c.authorization.webhook.cache_authorized_ttl = parse_duration(v)?
        ),
        flag!(
            "authorization-webhook-cache-unauthorized-ttl",
            value,
            "The duration to cache 'unauthorized' responses from the webhook authorizer",
            |c, v, f| c.authorization.webhook.cache_unauthorized_ttl = parse_duration(v)?
        ),
        flag!("client-ca-file", value, "CA bundle for client certificate authentication", |c, v, f| c.authentication.x509.client_ca_file =
            v.into()),
        flag!("contention-profiling", bool, "Enable block profiling, if profiling is enabled", |c, v, f| c.enable_contention_profiling =
            parse_bool(v)?),
        flag!("enable-debugging-handlers", bool, "Enables server endpoints for log collection and running commands", |c, v, f| c
            .enable_debugging_handlers =
            parse_bool(v)?),
        flag!("enable-server", bool, "Enable the Kubelet's server", |c, v, f| c.enable_server = parse_bool(v)?),
        flag!("healthz-bind-address", value, "The IP address for the healthz server to serve on", |c, v, f| c.healthz_bind_address =
            parse_ip(v)?),
        flag!("healthz-port", value, "The port of the localhost healthz endpoint (0 disables)", |c, v, f| c.healthz_port = parse_i32(v)?),
        flag!("port", value, "The port for the Kubelet to serve on", |c, v, f| c.port = parse_i32(v)?),
        flag!("read-only-port", value, "The read-only port for the Kubelet to serve on (0 disables)", |c, v, f| c.read_only_port =
            parse_i32(v)?),
        flag!("rotate-certificates", bool, "Auto rotate the kubelet client certificates", |c, v, f| c.rotate_certificates = parse_bool(v)?),
        flag!("rotate-server-certificates", bool, "Auto-request and rotate the kubelet serving certificates", |c, v, f| c
            .server_tls_bootstrap =
            parse_bool(v)?),
        flag!("tls-cert-file", value, "File containing x509 Certificate used for serving HTTPS", |c, v, f| c.tls_cert_file = v.into()),
        flag!("tls-cipher-suites", value, "Comma-separated list of cipher suites for the server", |c, v, f| extend(
            &mut c.tls_cipher_suites,
            v,
            f
        )),
        flag!("tls-min-version", value, "Minimum TLS version supported (VersionTLS12, VersionTLS13...)", |c, v, f| c.tls_min_version =
            v.into()),
        flag!("tls-private-key-file", value, "File containing x509 private key matching --tls-cert-file", |c, v, f| c
            .tls_private_key_file =
            v.into()),
    ]
}
