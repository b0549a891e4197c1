//! The shared command line on a small test command: pflag syntax, order,
//! help and version, upstream's error messages, removed and deprecated flags.

use super::*;
use crate::test_component::Widget;

const REMOVED: &[RemovedFlag] = &[("old-flag", false, "removed in 1.0"), ("old-bool", true, "gone")];

fn parse(list: &[&str]) -> Result<Vec<(String, String, bool)>, ConfigError<Widget>> {
    let args = [go_arg("v", false, "verbosity"), go_arg("size", false, "size"), go_arg("shiny", true, "shiny")];
    let mut cmd = command::<Widget>("A widget.", args, REMOVED);
    let argv = std::iter::once("widget").chain(list.iter().copied());
    let given = parse_command_line::<Widget, _, _>(&mut cmd, argv)?;
    Ok(given.into_iter().map(|g| (g.name, g.value, g.first)).collect())
}

fn given(list: &[&str]) -> Vec<(String, String, bool)> {
    parse(list).unwrap()
}

fn error(list: &[&str]) -> String {
    parse(list).unwrap_err().to_string()
}

fn flag(name: &str, value: &str, first: bool) -> (String, String, bool) {
    (name.into(), value.into(), first)
}

#[test]
fn flags_come_back_in_command_line_order() {
    assert_eq!(
        given(&["--size=1", "-v", "3", "--shiny", "--size", "-2", "--old-flag=x"]),
        [
            flag("size", "1", true),
            flag("v", "3", true),
            flag("shiny", "true", true),
            flag("size", "-2", false),
            flag("old-flag", "x", true),
        ]
    );
    assert_eq!(given(&["--shiny=false"]), [flag("shiny", "false", true)]);
    assert!(given(&[]).is_empty());
}

#[test]
fn bool_flags_take_a_value_only_with_equals() {
    assert_eq!(error(&["--shiny", "false"]), "unknown command \"false\" for \"widget\"");
}

#[test]
fn errors_read_like_upstream() {
    assert_eq!(error(&["--colour=red"]), "unknown flag: --colour");
    assert_eq!(error(&["-x"]), "unknown shorthand flag: 'x' in -x");
    assert_eq!(error(&["-é"]), "unknown shorthand flag: 'é' in -é");
    assert_eq!(error(&["-€x"]), "unknown shorthand flag: '€' in -€");
    assert_eq!(error(&["stray"]), "unknown command \"stray\" for \"widget\"");
    let missing = error(&["--size"]);
    assert!(missing.contains("--size") && !missing.starts_with("error: "), "{missing}");
    assert!(!missing.contains('\n'), "{missing}");
}

#[test]
fn help_and_version_exit_zero() {
    let help = parse(&["--size=1", "-h"]).unwrap_err();
    assert_eq!(help.exit_code(), 0);
    let text = help.to_string();
    assert!(text.contains("A widget.") && text.contains("help for widget"), "{text}");
    assert!(text.contains("--shiny") && !text.contains("old-flag"), "{text}");
    let version = parse(&["--version"]).unwrap_err();
    assert!(matches!(version, ConfigError::Version { .. }));
    assert!(version.to_string().starts_with("Kubernetes v1.37.2 (knode "), "{version}");
    assert!(matches!(parse(&["--version=raw"]), Err(ConfigError::Version { .. })));
    assert_eq!(given(&["--version=false"]), []);
}

#[test]
fn removed_flags_are_accepted_and_warned_about() {
    let w = removed_flag_warning(REMOVED, "old-bool").unwrap();
    assert_eq!(w.kind, WarningKind::RemovedFlag);
    assert_eq!(w.origin, Origin::CommandLine);
    assert_eq!(w.field, "--old-bool");
    assert_eq!(w.message, "flag --old-bool is no longer supported upstream (gone); ignored");
    assert!(removed_flag_warning(REMOVED, "size").is_none());
    assert_eq!(given(&["--old-bool"]), [flag("old-bool", "true", true)]);
}

#[test]
fn deprecated_flags_warn_in_upstream_words() {
    let w = deprecated_flag_warning("--size", "use --config.");
    assert_eq!(w.kind, WarningKind::DeprecatedFlag);
    assert_eq!(w.field, "--size");
    assert_eq!(w.message, "Flag --size has been deprecated, use --config.");
}

#[test]
fn removed_tables_join_in_order() {
    const JOINED: [RemovedFlag; KLOG_REMOVED_FLAGS.len() + REMOVED.len()] = join_removed(KLOG_REMOVED_FLAGS, REMOVED);
    assert_eq!(&JOINED[..KLOG_REMOVED_FLAGS.len()], KLOG_REMOVED_FLAGS);
    assert_eq!(&JOINED[KLOG_REMOVED_FLAGS.len()..], REMOVED);
    let empty: [RemovedFlag; 0] = join_removed(&[], &[]);
    assert!(empty.is_empty());
}
