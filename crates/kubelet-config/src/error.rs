//! Errors and warnings of kubelet configuration loading: the shared types of
//! `component-config`, with the kubelet named in messages about its file.
//!
//! Every error displays as one line naming where the problem is (file or flag)
//! and which field, and what was expected. The one exception is upstream's
//! two-line `--node-labels` refusal, kept word for word. Warnings are values
//! (returned to the caller) and are also logged by the code that produces them.

pub use component_config::{ConfigWarning, Origin, WarningKind};

use crate::types::{API_VERSION, KIND};

/// The kubelet, as `component-config` names it in messages.
#[derive(Debug)]
pub enum Kubelet {}

impl component_config::Component for Kubelet {
    const NAME: &'static str = "kubelet";
    const API_VERSION: &'static str = API_VERSION;
    const KIND: &'static str = KIND;

    fn unknown_command(arg: &str) -> String {
        format!("unknown command {arg}")
    }
}

/// Why the kubelet's configuration could not be loaded.
pub type ConfigError = component_config::ConfigError<Kubelet>;
