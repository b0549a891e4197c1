//! Errors and warnings of kube-proxy configuration loading: the shared types
//! of `component-config`, with kube-proxy named in messages about its file.
//!
//! Every error displays as one line naming where the problem is (file or
//! flag) and which field. Warnings are values returned to the caller, and are
//! also logged where they are made.

pub use component_config::{ConfigWarning, Origin, WarningKind};

use crate::types::{API_VERSION, KIND};

/// kube-proxy, as `component-config` names it in messages.
#[derive(Debug)]
pub enum KubeProxy {}

impl component_config::Component for KubeProxy {
    const NAME: &'static str = "kube-proxy";
    const API_VERSION: &'static str = API_VERSION;
    const KIND: &'static str = KIND;

    fn unknown_command(arg: &str) -> String {
        format!("unknown command {arg:?} for \"kube-proxy\"")
    }
}

/// Why kube-proxy's configuration could not be loaded.
pub type ConfigError = component_config::ConfigError<KubeProxy>;
