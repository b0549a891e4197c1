//! The table of kubelet flags that set `KubeletConfiguration` fields (upstream
//! `AddKubeletConfigFlags`, all but a few deprecated in favour of `--config`),
//! and of flags upstream removed that old unit files still pass.
//! Data only: `flags` turns it into a clap command and applies it.
//!
//! This module owns the row type and the `flag!` macro; the rows live in one
//! submodule per topic. It must not parse a command line or touch a file.

use crate::types::KubeletConfiguration;

/// Sets a field from a flag value; the `bool` is true on the flag's first
/// occurrence (list and map flags replace the file's value then, and append after).
pub type Setter = fn(&mut KubeletConfiguration, &str, bool) -> Result<(), String>;

/// One row of the table: a flag that sets a `KubeletConfiguration` field.
pub struct ConfigFlag {
    /// Flag name without the leading dashes (`sync-frequency`).
    pub name: &'static str,
    /// Go bool flag: `--name`, `--name=true|false`, never `--name false`.
    pub is_bool: bool,
    /// Upstream prints "has been deprecated, This parameter should be set via the config file".
    pub deprecated: bool,
    /// One-line description printed by `--help`.
    pub help: &'static str,
    /// Parses the flag's value into its configuration field.
    pub set: Setter,
}

macro_rules! flag {
    (kind bool) => { true };
    (kind value) => { false };
    (@ $name:literal, $kind:ident, $dep:expr, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        $crate::flag_table::ConfigFlag {
            name: $name,
            is_bool: flag!(kind $kind),
            deprecated: $dep,
            help: $help,
            set: |$c: &mut $crate::types::KubeletConfiguration, $v: &str, $first: bool| {
                let _ = ($first, $v);
                $body;
                Ok(())
            },
        }
    };
    (current $name:literal, $kind:ident, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        flag!(@ $name, $kind, false, $help, |$c, $v, $first| $body)
    };
    ($name:literal, $kind:ident, $help:literal, |$c:ident, $v:ident, $first:ident| $body:expr) => {
        flag!(@ $name, $kind, true, $help, |$c, $v, $first| $body)
    };
}

mod allocatable;
mod cgroups;
mod logging;
mod node;
mod removed;
mod runtime;
mod server;

pub use removed::REMOVED_FLAGS;

/// Extends a list, replacing the file's value on the first occurrence.
fn extend(list: &mut Vec<String>, v: &str, first: bool) {
    if first {
        list.clear();
    }
    list.extend(crate::flag_values::parse_list(v));
}

fn merge<V>(map: &mut std::collections::BTreeMap<String, V>, new: std::collections::BTreeMap<String, V>, first: bool) {
    if first {
        map.clear();
    }
    map.extend(new);
}

/// Every flag that sets a configuration field, in `--help` order: by name,
/// except `--vmodule`, which has always come last.
pub fn config_flags() -> Vec<ConfigFlag> {
    let mut all = server::flags();
    all.extend(cgroups::flags());
    all.extend(allocatable::flags());
    all.extend(runtime::flags());
    all.extend(node::flags());
    all.extend(logging::flags());
    all.sort_by_key(|f| (f.name == "vmodule", f.name));
    all
}

#[cfg(test)]
mod tests;
