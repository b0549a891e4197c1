//! Flags that set `KubeletConfiguration.logging` (upstream's component-base
//! logs options): format, verbosity per file, flush frequency, split streams.
//! Data only, like the rest of the table.

use super::ConfigFlag;
use crate::flag_values::*;

/// Logging flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!(current "log-flush-frequency", value, "Maximum number of seconds between log flushes", |c, v, f| c.logging.flush_frequency = parse_duration(v)?),
        flag!("log-json-info-buffer-size", value, "[Alpha] info buffer size in JSON format with split streams", |c, v, f| c
            .logging
            .options
            .json
            .info_buffer_size =
            v.into()),
        flag!("log-json-split-stream", bool, "[Alpha] In JSON format, write errors to stderr and info to stdout", |c, v, f| c
            .logging
            .options
            .json
            .split_stream =
            parse_bool(v)?),
        flag!("log-text-info-buffer-size", value, "[Alpha] info buffer size in text format with split streams", |c, v, f| c
            .logging
            .options
            .text
            .info_buffer_size =
            v.into()),
        flag!("log-text-split-stream", bool, "[Alpha] In text format, write errors to stderr and info to stdout", |c, v, f| c
            .logging
            .options
            .text
            .split_stream =
            parse_bool(v)?),
        flag!("logging-format", value, "Sets the log format", |c, v, f| { c.logging.format = v.into() }),
        flag!(current "vmodule", value, "comma-separated list of pattern=N settings for file-filtered logging", |c, v, f| c.logging.vmodule = parse_vmodule(v)?),
    ]
}
