//! Decoding steps on their own, for a test component: YAML and JSON, bad
//! input named in one line, type meta, removed and unknown fields, nulls.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::test_component::Widget;

const HEAD: &str = "apiVersion: widget.config.k8s.io/v1\nkind: WidgetConfiguration\n";

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct WidgetConfiguration {
    api_version: String,
    kind: String,
    size: i32,
    labels: BTreeMap<String, String>,
    parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Part {
    name: String,
}

fn origin() -> Origin {
    Origin::File("/etc/widget.yaml".into())
}

fn mapping(text: &str) -> Result<Map<String, Value>, String> {
    parse_mapping::<Widget>(&origin(), text.as_bytes()).map_err(|e| e.to_string())
}

fn decode(text: &str) -> Result<(WidgetConfiguration, Vec<ConfigWarning>), String> {
    let map = strip_nulls(mapping(text)?);
    check_type_meta::<Widget>(&origin(), &map).map_err(|e| e.to_string())?;
    decode_typed::<Widget, _>(&origin(), map).map_err(|e| e.to_string())
}

#[test]
fn yaml_and_json_decode_alike() {
    let yaml = decode(&format!("{HEAD}size: 3\nparts:\n- name: a\n")).unwrap();
    let json = decode(r#"{"apiVersion":"widget.config.k8s.io/v1","kind":"WidgetConfiguration","size":3,"parts":[{"name":"a"}]}"#).unwrap();
    assert_eq!(yaml, json);
    assert_eq!(yaml.0.size, 3);
    assert!(yaml.1.is_empty());
    let bom = decode(&format!("\u{feff}{HEAD}size: 4\n")).unwrap();
    assert_eq!(bom.0.size, 4);
}

#[test]
fn malformed_input_is_a_one_line_syntax_error() {
    let e = |text: &[u8]| parse_mapping::<Widget>(&origin(), text).unwrap_err().to_string();
    let prefix = "/etc/widget.yaml: cannot parse widget configuration: ";
    assert_eq!(e(b"\xff\xfe"), format!("{prefix}not valid UTF-8 (at byte 0)"));
    assert_eq!(e(b" \n\t"), format!("{prefix}the file is empty (expected a WidgetConfiguration)"));
    assert_eq!(e(b"[1, 2]"), format!("{prefix}expected a mapping of fields at the top level (a WidgetConfiguration)"));
    assert!(e(b"{bad").starts_with(&format!("{prefix}invalid JSON: ")));
    let yaml = e(b"a: [b\n  c: :");
    assert!(yaml.starts_with(&format!("{prefix}invalid YAML: ")), "{yaml}");
    assert!(!yaml.contains('\n'), "{yaml}");
}

#[test]
fn type_meta_is_checked_kind_first() {
    let check = |text: &str| check_type_meta::<Widget>(&origin(), &mapping(text).unwrap()).map_err(|e| e.to_string());
    assert_eq!(check(HEAD), Ok(()));
    let refused = [
        ("apiVersion: x\n", "kind: missing (expected \"WidgetConfiguration\")"),
        ("kind: null\n", "kind: expected \"WidgetConfiguration\", got null"),
        ("kind: WidgetConfiguration\n", "apiVersion: missing (expected \"widget.config.k8s.io/v1\")"),
        ("kind: WidgetConfiguration\napiVersion: 2\n", "apiVersion: unsupported version 2 (expected \"widget.config.k8s.io/v1\")"),
    ];
    for (text, message) in refused {
        let want = format!("/etc/widget.yaml: field {message}");
        assert_eq!(check(text), Err(want), "{text:?}");
    }
}

#[test]
fn removed_fields_are_dropped_with_a_warning_even_when_null() {
    let mut map = mapping(&format!("{HEAD}old: null\nnested:\n  gone: 1\n  kept: 2\nsize: 1\n")).unwrap();
    let warnings = remove_fields(
        &origin(),
        &mut map,
        &[("old", "removed in 1.0"), ("nested.gone", "removed too"), ("absent", "x"), ("size.deep", "x")],
    );
    let fields: Vec<&str> = warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["old", "nested.gone"]);
    assert!(warnings.iter().all(|w| w.kind == WarningKind::RemovedField));
    assert_eq!(warnings[0].message, "field ignored: removed in 1.0");
    assert!(!map.contains_key("old"));
    assert_eq!(map["nested"], serde_json::json!({"kept": 2}));
    assert_eq!(map["size"], 1);
}

#[test]
fn nulls_mean_not_set() {
    let (cfg, w) = decode(&format!("{HEAD}size: null\nlabels: {{a: null}}\nparts: [{{name: null}}]\n")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(cfg.size, 0);
    assert!(cfg.labels.is_empty());
    assert_eq!(cfg.parts, [Part::default()]);
}

#[test]
fn unknown_fields_warn_with_their_path() {
    let (_, w) = decode(&format!("{HEAD}colour: red\nparts:\n- name: a\n  weight: 2\n")).unwrap();
    let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["colour", "parts[0].weight"]);
    assert!(w.iter().all(|w| w.kind == WarningKind::UnknownField));
    assert_eq!(w[0].message, "unknown field in widget.config.k8s.io/v1 WidgetConfiguration; ignored");
}

#[test]
fn a_field_of_the_wrong_type_is_named() {
    let e = decode(&format!("{HEAD}parts:\n- name: [1]\n")).unwrap_err();
    assert_eq!(e, "/etc/widget.yaml: field parts[0].name: invalid type: sequence, expected a string");
    let e = decode(&format!("{HEAD}size: abc\n")).unwrap_err();
    assert_eq!(e, "/etc/widget.yaml: field size: invalid type: string \"abc\", expected i32");
}

#[test]
fn field_paths_are_normalized() {
    assert_eq!(field_path("a.b.0.c"), "a.b[0].c");
    assert_eq!(field_path("a.b[0].c"), "a.b[0].c");
    assert_eq!(field_path("."), "(document)");
    assert_eq!(field_path(""), "(document)");
}

#[test]
fn a_missing_file_is_named() {
    let e = read_file::<Widget>(Path::new("/nonexistent/widget.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/widget.yaml: cannot read widget configuration file: "), "{e}");
}
