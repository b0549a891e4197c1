//! What a `RegisterRequest` must satisfy before the kubelet dials the plugin (upstream
//! `server.Register`): a supported API version and an extended resource name
//! (`v1helper.IsExtendedResourceName`), and the errors a registration answers with. Pure.

use crate::v1beta1::{RegisterRequest, SUPPORTED_VERSIONS};

/// Why a registration is refused; the plugin gets the text as its `Register` error. The texts
/// are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The plugin speaks a device plugin API version the kubelet does not.
    #[error("requested API version {version:?} is not supported by kubelet. Supported version is {supported:?}")]
    UnsupportedVersion {
        /// The version the plugin asked for (`v1beta1`).
        version: String,
        /// The versions the kubelet supports.
        supported: Vec<String>,
    },
    /// The resource name is not an extended resource name (`vendor.com/gpu`); the name given.
    #[error("the ResourceName {0:?} is invalid")]
    InvalidResourceName(String),
    /// The plugin's socket could not be reached.
    #[error("failed to dial device plugin: {0}")]
    Dial(String),
    /// The plugin answered `GetDevicePluginOptions` with an error: it is not used.
    #[error("failed to get device plugin options: {0}")]
    Options(String),
}

/// Checks the version and resource name of `req`.
pub fn validate(req: &RegisterRequest) -> Result<(), RegistrationError> {
    if !SUPPORTED_VERSIONS.contains(&req.version.as_str()) {
        return Err(RegistrationError::UnsupportedVersion {
            version: req.version.clone(),
            supported: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        });
    }
    if !is_extended_resource_name(&req.resource_name) {
        return Err(RegistrationError::InvalidResourceName(req.resource_name.clone()));
    }
    Ok(())
}

/// Whether `name` is an extended resource: outside the `kubernetes.io/` namespace (so it has a
/// domain prefix), not starting with `requests.`, and a qualified name once `requests.` is put in
/// front (as quota sees it).
pub fn is_extended_resource_name(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native && !name.starts_with("requests.") && is_qualified_name(&format!("requests.{name}"))
}

/// `[prefix/]name`: a DNS-1123 subdomain prefix and a name of at most 63 alphanumerics, `-`,
/// `_` and `.`, starting and ending alphanumeric.
fn is_qualified_name(value: &str) -> bool {
    let (prefix, name) = match value.split('/').collect::<Vec<_>>()[..] {
        [name] => (None, name),
        [prefix, name] => (Some(prefix), name),
        _ => return false,
    };
    if prefix.is_some_and(|p| !is_dns1123_subdomain(p)) {
        return false;
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// Lower-case alphanumerics, `-` and `.`, at most 253 characters, each dot-separated label
/// starting and ending alphanumeric.
fn is_dns1123_subdomain(value: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty() && label.starts_with(alnum) && label.ends_with(alnum) && label.chars().all(|c| alnum(c) || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: &str, resource: &str) -> RegisterRequest {
        RegisterRequest { version: version.into(), endpoint: "p.sock".into(), resource_name: resource.into(), options: None }
    }

    #[test]
    fn extended_resource_names_follow_upstream() {
        for ok in ["test.device/device-plugin-failures-1234", "example.com/gpu", "a.b/c_d.e-f", "nvidia.com/gpu"] {
            assert!(is_extended_resource_name(ok), "{ok}");
        }
        for bad in [
            "cpu",
            "gpu",
            "kubernetes.io/gpu",
            "node.kubernetes.io/x",
            "requests.example.com/gpu",
            "example.com/",
            "/gpu",
            "Example.com/gpu",
            "example.com/a/b",
            "example.com/-gpu",
            "example..com/gpu",
            &format!("example.com/{}", "g".repeat(64)),
        ] {
            assert!(!is_extended_resource_name(bad), "{bad}");
        }
    }

    #[test]
    fn registration_checks_version_then_name_with_upstreams_texts() {
        assert_eq!(validate(&request("v1beta1", "test.device/x")), Ok(()));
        let err = validate(&request("v1alpha1", "test.device/x")).unwrap_err();
        assert_eq!(err.to_string(), "requested API version \"v1alpha1\" is not supported by kubelet. Supported version is [\"v1beta1\"]");
        let err = validate(&request("v1beta1", "gpu")).unwrap_err();
        assert_eq!(err.to_string(), "the ResourceName \"gpu\" is invalid");
    }
}
