use k8s_openapi::api::core::v1::PodSpec;

use super::*;

fn pod(uid: &str, host_users: Option<bool>) -> Pod {
    let mut p = Pod { spec: Some(PodSpec { host_users, ..Default::default() }), ..Default::default() };
    p.metadata.uid = Some(uid.into());
    p
}

fn setup(root: &Path, uids: &[&str]) {
    for uid in uids {
        std::fs::create_dir_all(root.join("pods").join(uid)).unwrap();
    }
}

fn first_host_id(ns: &api::UserNamespace) -> u32 {
    assert_eq!(ns.mode, api::NamespaceMode::Pod as i32);
    assert_eq!(ns.uids, ns.gids);
    assert_eq!((ns.uids.len(), ns.uids[0].container_id, ns.uids[0].length), (1, 0, IDS_UNIT));
    ns.uids[0].host_id
}

#[test]
fn ranges_are_checked_as_upstream() {
    let d = IdRanges::default_for(IDS_UNIT);
    assert_eq!((d.first_id, d.length), (65536, 4_294_901_760));
    d.validate(110).unwrap();
    let bad =
        |first_id, length, ids_per_pod, max_pods| IdRanges { first_id, length, ids_per_pod }.validate(max_pods).unwrap_err().to_string();
    assert!(bad(65536, 65536 * 4, 1000, 1).contains("not a multiple of 65536"));
    assert!(bad(100_000, 65536 * 4, 65536, 1).contains("ID 100000 is not a multiple of 65536"));
    assert!(bad(0, 65536 * 4, 65536, 1).contains("must be greater or equal to 65536"));
    assert!(bad(65536, 65536 * 4 + 1, 65536, 1).contains("length 262145 is not a multiple"));
    assert!(bad(65536, 65536 * 4, 65536, 5).contains("not enough to support 5 pods"));
    assert!(bad(65536 * 2, 4_294_901_760, 65536, 1).contains("past the 32-bit ID space"));
}

#[test]
fn getsubids_output_is_parsed() {
    assert_eq!(parse_getsubids("0: kubelet 65536 2147483648\n").unwrap(), (65536, 2_147_483_648));
    assert!(parse_getsubids("0: kubelet 65536").unwrap_err().to_string().contains("4 elements"));
    assert!(parse_getsubids("0: kubelet x 65536").is_err());
}

#[test]
fn pods_get_distinct_ranges_that_persist_and_are_freed_with_their_directories() {
    let root = tempfile::tempdir().unwrap();
    let ranges = IdRanges { first_id: 65536, length: 65536 * 3, ids_per_pod: IDS_UNIT };
    let users = UserNamespaces::new(root.path(), ranges);
    setup(root.path(), &["a", "b", "c", "d"]);

    // Pods that share the host's namespace.
    for host_users in [None, Some(true)] {
        let ns = users.options(&pod("a", host_users), "", false, true).unwrap();
        assert_eq!((ns.mode, ns.uids.len()), (api::NamespaceMode::Node as i32, 0));
    }
    assert!(!root.path().join("pods/a/userns").exists());

    let a = first_host_id(&users.options(&pod("a", Some(false)), "", true, true).unwrap());
    let b = first_host_id(&users.options(&pod("b", Some(false)), "", true, true).unwrap());
    assert_eq!((a, b), (65536, 131072));
    // The stored range is reused, also without `create` (the sandbox exists) and by a new
    // manager (a kubelet restart).
    let again = UserNamespaces::new(root.path(), ranges);
    assert_eq!(first_host_id(&again.options(&pod("a", Some(false)), "", true, false).unwrap()), a);
    let text = std::fs::read_to_string(root.path().join("pods/a/userns")).unwrap();
    assert_eq!(
        text,
        r#"{"uidMappings":[{"hostId":65536,"containerId":0,"length":65536}],"gidMappings":[{"hostId":65536,"containerId":0,"length":65536}]}"#
    );

    let c = first_host_id(&again.options(&pod("c", Some(false)), "", true, true).unwrap());
    assert_eq!(c, 196608);
    let err = again.options(&pod("d", Some(false)), "", true, true).unwrap_err().to_string();
    assert!(err.contains("could not find an empty slot"), "{err}");
    // A pod directory removed frees its range.
    std::fs::remove_dir_all(root.path().join("pods/b")).unwrap();
    assert_eq!(first_host_id(&again.options(&pod("d", Some(false)), "", true, true).unwrap()), b);
}

#[test]
fn unsupported_handlers_and_bad_files_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let users = UserNamespaces::new(root.path(), IdRanges::default_for(IDS_UNIT));
    setup(root.path(), &["a", "b"]);
    assert_eq!(
        users.options(&pod("a", Some(false)), "", false, true).unwrap_err().to_string(),
        "can't set `spec.hostUsers: false`, runtime does not support user namespaces"
    );
    assert_eq!(
        users.options(&pod("a", Some(false)), "kata", false, true).unwrap_err().to_string(),
        "can't set `spec.hostUsers: false`, RuntimeClass handler \"kata\" does not support user namespaces"
    );
    assert!(users.options(&pod("a", Some(false)), "", true, false).unwrap_err().to_string().contains("no mappings recorded"));

    std::fs::write(root.path().join("pods/a/userns"), "{not json").unwrap();
    let err = users.options(&pod("a", Some(false)), "", true, true).unwrap_err().to_string();
    assert!(err.contains("invalid user namespace mappings file") && err.contains("pods/a/userns"), "{err}");
    let two = r#"{"uidMappings":[{"hostId":65536,"containerId":0,"length":65536}],"gidMappings":[{"hostId":131072,"containerId":0,"length":65536}]}"#;
    std::fs::write(root.path().join("pods/a/userns"), two).unwrap();
    assert!(users.options(&pod("a", Some(false)), "", true, true).unwrap_err().to_string().contains("should be identical"));
    // Another pod is not held up by the bad file, and does not get a range it names.
    assert_eq!(first_host_id(&users.options(&pod("b", Some(false)), "", true, true).unwrap()), 196608);
    // A stored range this kubelet could not have handed out (host root, off a slot) is refused.
    setup(root.path(), &["c", "d"]);
    for (uid, host) in [("c", 0), ("d", 70000)] {
        let bad = format!(
            r#"{{"uidMappings":[{{"hostId":{host},"containerId":0,"length":65536}}],"gidMappings":[{{"hostId":{host},"containerId":0,"length":65536}}]}}"#
        );
        std::fs::write(root.path().join(format!("pods/{uid}/userns")), bad).unwrap();
        let err = users.options(&pod(uid, Some(false)), "", true, false).unwrap_err().to_string();
        assert!(err.contains("is not one of this kubelet's"), "{uid}: {err}");
    }
}
