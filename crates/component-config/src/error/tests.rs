//! Error and warning messages: one line naming the file or flag and the
//! field, the component named where the file could not be read or parsed.

use std::path::PathBuf;

use super::*;
use crate::test_component::Widget;

type Error = ConfigError<Widget>;

fn file() -> Origin {
    Origin::File(PathBuf::from("/etc/widget.yaml"))
}

#[test]
fn origin_displays_the_file_or_the_command_line() {
    assert_eq!(file().to_string(), "/etc/widget.yaml");
    assert_eq!(Origin::CommandLine.to_string(), "command line");
}

#[test]
fn file_errors_name_the_component_file_and_field() {
    let read = Error::Read { path: "/etc/widget.yaml".into(), source: std::io::Error::from(std::io::ErrorKind::NotFound) };
    assert_eq!(read.to_string(), "/etc/widget.yaml: cannot read widget configuration file: entity not found");
    assert!(std::error::Error::source(&read).is_some());
    let syntax = Error::Syntax { origin: file(), message: "invalid JSON".into() };
    assert_eq!(syntax.to_string(), "/etc/widget.yaml: cannot parse widget configuration: invalid JSON");
    assert_eq!(Error::field(&file(), "a.b[0]", "expected i32").to_string(), "/etc/widget.yaml: field a.b[0]: expected i32");
    assert_eq!(
        Error::invalid(&Origin::CommandLine, "port", "must be positive").to_string(),
        "command line: invalid configuration: port: must be positive"
    );
}

#[test]
fn flag_errors_read_like_pflag() {
    assert_eq!(Error::UnknownFlag { flag: "--foo".into() }.to_string(), "unknown flag: --foo");
    assert_eq!(
        Error::flag_value("--v", "x", "expected a number".into()).to_string(),
        "invalid argument \"x\" for \"--v\" flag: expected a number"
    );
}

#[test]
fn only_help_and_version_exit_zero() {
    assert_eq!(Error::Help { text: "h".into() }.exit_code(), 0);
    assert_eq!(Error::Version { text: "v".into() }.exit_code(), 0);
    assert_eq!(Error::Usage { message: "m".into() }.exit_code(), 1);
    assert_eq!(Error::NodeLabels { message: "m".into() }.exit_code(), 1);
}

#[test]
fn warnings_name_origin_and_field() {
    let w = ConfigWarning::new(&file(), WarningKind::UnknownField, "fooBar", "unknown field; ignored");
    assert_eq!(w.kind, WarningKind::UnknownField);
    assert_eq!(w.to_string(), "/etc/widget.yaml: fooBar: unknown field; ignored");
}
