//! The kubelet's command line: one argument per input line, after the program name. Inputs that
//! set `--config` are skipped (loading would read that file); everything else goes through
//! `load_from_args` (flags, defaults, flag overrides, validation), which reads no file then.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args: Vec<&str> = std::iter::once("kubelet").chain(text.split('\n')).collect();
    match kubelet_config::flags::parse_args(&args) {
        Ok(parsed) if parsed.flags.config.is_some() => return,
        _ => {}
    }
    let _ = kubelet_config::load_from_args(&args);
});
