//! The plumbing the kubelet's and kube-proxy's configuration crates share:
//! where a setting came from ([`Origin`]), the typed [`ConfigError`] and the
//! [`ConfigWarning`]s, decoding a YAML/JSON component configuration file
//! ([`decode`]), and the Go (pflag) style command line ([`flags`]).
//!
//! Generic over the component ([`Component`]): the field tables, defaults,
//! validation and configuration types stay in `kubelet-config` and
//! `proxy-config`. Pure: nothing is read here but the file a caller names,
//! and no component is started.

pub mod decode;
pub mod error;
pub mod flags;

pub use error::{ConfigError, ConfigWarning, Origin, WarningKind};

/// The Kubernetes release whose kubelet and kube-proxy these stand in for.
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// A component whose configuration is loaded here (the kubelet, kube-proxy):
/// the names that appear in its messages and its file's type meta.
pub trait Component: std::fmt::Debug + 'static {
    /// The program as upstream names it in messages (`kubelet`, `kube-proxy`).
    const NAME: &'static str;
    /// The configuration file's `apiVersion`.
    const API_VERSION: &'static str;
    /// The configuration file's `kind`.
    const KIND: &'static str;

    /// The message for a stray positional argument (upstream's wording
    /// differs between the components).
    fn unknown_command(arg: &str) -> String;
}

#[cfg(test)]
pub(crate) mod test_component {
    //! A component for unit tests, so the messages can be checked here.

    /// The component the unit tests load.
    #[derive(Debug)]
    pub enum Widget {}

    impl crate::Component for Widget {
        const NAME: &'static str = "widget";
        const API_VERSION: &'static str = "widget.config.k8s.io/v1";
        const KIND: &'static str = "WidgetConfiguration";

        fn unknown_command(arg: &str) -> String {
            format!("unknown command {arg:?} for \"widget\"")
        }
    }
}
