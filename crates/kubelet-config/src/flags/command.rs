//! The clap command for the kubelet: every flag (kubelet-only, config and
//! removed) declared with Go pflag syntax (`component_config::flags`, which
//! also turns clap's errors into upstream's messages). Builds only; values
//! are applied in `flags`.

use clap::Command;
use component_config::flags::go_arg;

use super::kubelet_flags::KUBELET_FLAGS;
use crate::error::Kubelet;
use crate::flag_table::{REMOVED_FLAGS, config_flags};

/// The clap command for the kubelet (used for parsing and `--help`).
pub fn command() -> Command {
    let kubelet_flags = KUBELET_FLAGS.iter().map(|(name, is_bool, _, help, _)| go_arg(name, *is_bool, help));
    let config_flags = config_flags().into_iter().map(|f| go_arg(f.name, f.is_bool, f.help));
    component_config::flags::command::<Kubelet>(
        "The kubelet is the primary \"node agent\" that runs on each node.",
        kubelet_flags.chain(config_flags),
        REMOVED_FLAGS,
    )
}
