use super::*;

fn parse(q: &str) -> NodeLogQuery {
    NodeLogQuery::parse(q).unwrap().unwrap()
}

fn errors(q: &str, dir: &Path) -> String {
    match NodeLogQuery::parse(q) {
        Err(e) => aggregate(&e),
        Ok(Some(q)) => q.validate(dir).map(|_| String::new()).unwrap_or_else(|e| aggregate(&e)),
        Ok(None) => "none".into(),
    }
}

#[test]
fn services_files_and_options() {
    let q = parse("query=kubelet&query=containerd&tailLines=10&sinceTime=2026-12-01T10:00:00Z&pattern=err.*");
    assert_eq!(q.services, vec!["kubelet", "containerd"]);
    assert_eq!((q.tail_lines, q.pattern.as_str()), (Some(10), "err.*"));
    let f = parse("query=pods/x.log");
    assert_eq!((f.files.clone(), f.services.len()), (vec!["pods/x.log".to_string()], 0));
    // No query parameter at all: a plain file request.
    assert_eq!(NodeLogQuery::parse("").unwrap(), None);
    assert_eq!(NodeLogQuery::parse("other=1").unwrap(), None);
    let args = q.journalctl_args(&q.services);
    assert_eq!(
        args,
        [
            "--utc",
            "--no-pager",
            "--output=short-precise",
            "--since=2026-12-1 10:0:0",
            "--pager-end",
            "--lines=10",
            "--unit=kubelet",
            "--unit=containerd",
            "--grep=err.*"
        ]
    );
}

#[test]
fn errors_read_as_upstream_field_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    assert_eq!(errors("query=%20", dir), r#"query: Invalid value: [" "]: may not be empty"#);
    assert_eq!(errors("query=a&tailLines=x", dir), r#"tailLines: Invalid value: "x": strconv.Atoi: parsing "x": invalid syntax"#);
    assert_eq!(errors("query=a&sinceTime=yesterday", dir), r#"sinceTime: Invalid value: "yesterday": invalid time format"#);
    assert_eq!(errors("query=a&tailLines=100001", dir), "tailLines: Invalid value: 100001: must be between 0 and 100000, inclusive");
    assert_eq!(errors("query=a&boot=1", dir), "boot: Invalid value: 1: must be less than 1");
    assert_eq!(errors("query=a;rm", dir), r#"query: Invalid value: "a;rm": input contains unsupported characters"#);
    assert_eq!(errors("tailLines=3", dir), "query: Required value: cannot be empty with options");
    assert_eq!(errors("query=a&query=b&query=c&query=d&query=e", dir), "query: Too many: 5: must have at most 4 items");
    assert!(errors("query=a&pattern=(", dir).starts_with(r#"pattern: Invalid value: "(": "#));
    assert_eq!(
        errors("query=x/y.log&query=z/w.log", dir),
        r#"query: Invalid value: ["x/y.log","z/w.log"]: cannot specify more than one file"#
    );
    assert!(errors("query=../etc/passwd", dir).starts_with(r#"query: Invalid value: ["../etc/passwd"]: "#));
    std::fs::write(dir.join("a.log"), "x").unwrap();
    assert_eq!(errors("query=./a.log", dir), "");
    assert_eq!(errors("query=./a.log&tailLines=1", dir), r#"query: Invalid value: ["./a.log"]: cannot specify file with options"#);
    assert_eq!(errors("query=x/y.log&query=svc", dir), r#"query: Invalid value: "[x/y.log], [svc]": cannot specify a file and service"#);
    // Two at once are bracketed.
    assert!(errors("query=a&tailLines=-1&boot=2", dir).starts_with("[boot: Invalid value: 2"));
    assert_eq!(
        errors("query=a&sinceTime=2026-12-02T00:00:00Z&untilTime=2026-12-01T00:00:00Z", dir),
        "untilTime: Invalid value: \"2026-12-01T00:00:00Z\": must be after `sinceTime`"
    );
}
