use super::*;

const IMAGE: &str = "198.18.0.9:5000/team/private:1.0";
const REF: &str = "sha256:1111";

fn secret(uid: &str, name: &str, hash: &str) -> SecretCoordinates {
    SecretCoordinates { uid: uid.into(), namespace: "default".into(), name: name.into(), credential_hash: hash.into() }
}

fn records(policy: VerificationPolicy) -> (tempfile::TempDir, PullRecords) {
    let dir = tempfile::tempdir().unwrap();
    let r = PullRecords::new(dir.path(), policy);
    (dir, r)
}

#[test]
fn names_hashes_and_files_are_upstream_s() {
    assert_eq!(image_name("r.io:5000/a/b:1.0@sha256:abc"), "r.io:5000/a/b");
    assert_eq!(image_name("r.io:5000/a/b"), "r.io:5000/a/b");
    assert_eq!(image_name("busybox:1.35"), "busybox");
    // sha256 of {"username":"u","password":"p"}, as Go's json.Marshal writes it.
    assert_eq!(credential_hash("u", "p", ""), "edbd57ca9372e64eb1c9070ecf3a049ac553596b0529acf034c7a71d4e618e88");
    assert_eq!(credential_hash("u", "p", "a<b"), "a7698fcc3ea9fdd13c7445b1434dd42eb6b66c5e8907e693423dbfdb4c4ccba2");
    assert_eq!(go_json_string("a<b>&"), "\"a\\u003cb\\u003e\\u0026\"");
    let (_d, r) = records(VerificationPolicy::AlwaysVerify);
    r.record_pulled(IMAGE, REF, PulledWith::Secret(secret("u1", "regcred", "h1"))).unwrap();
    let path = r.pulled().join(file_name(REF));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(r.pulled()).unwrap().permissions().mode() & 0o777, 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\"kind\":\"ImagePulledRecord\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"lastUpdatedTime\":\""),
        "{text}"
    );
    assert!(text.ends_with("\"imageRef\":\"sha256:1111\",\"credentialMapping\":{\"198.18.0.9:5000/team/private\":{\"kubernetesSecrets\":[{\"uid\":\"u1\",\"namespace\":\"default\",\"name\":\"regcred\",\"credentialHash\":\"h1\"}]}}}"), "{text}");
    // Upstream's file of a record (its test data) reads back.
    std::fs::write(&path, r#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"sha256:1111","credentialMapping":{"198.18.0.9:5000/team/private":{"nodePodsAccessible":true}}}"#).unwrap();
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[]))), Access::Granted);
    // A file that is not a record: the error names it.
    std::fs::write(&path, "not json").unwrap();
    let err = r.record(REF).unwrap_err();
    assert!(matches!(&err, PullRecordError::Decode { path: p, .. } if *p == path), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: expected ident", path.display())), "{err}");
}

#[test]
fn a_secret_pulled_image_is_granted_to_the_same_credentials_only() {
    let (_d, r) = records(VerificationPolicy::NeverVerifyPreloadedImages);
    r.record_pulled(IMAGE, REF, PulledWith::Secret(secret("u1", "regcred", "h1"))).unwrap();
    assert_eq!(r.access(IMAGE, REF, None), Access::NeedsPodCredentials, "only the pod's secrets can tell");
    assert!(matches!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[]))), Access::MustPull(_)), "no credentials");
    assert!(
        matches!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u9", "other", "h9")]))), Access::MustPull(_)),
        "other credentials"
    );
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u1", "regcred", "h1")]))), Access::Granted);
    // The same credentials in another secret: granted, and that secret is recorded.
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u2", "copy", "h1")]))), Access::Granted);
    let names: Vec<String> =
        r.record(REF).unwrap().unwrap().credential_mapping[image_name(IMAGE)].kubernetes_secrets.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["copy", "regcred"]);
    // The same secret object with new contents: granted, its hash follows.
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u1", "regcred", "h2")]))), Access::Granted);
    assert!(
        r.record(REF).unwrap().unwrap().credential_mapping[image_name(IMAGE)].kubernetes_secrets.iter().any(|s| s.credential_hash == "h2")
    );
    // Another tag of the same image name shares the mapping; another name does not.
    assert_eq!(
        r.access("198.18.0.9:5000/team/private:2.0", REF, Some(&PodCredentials::secrets(&[secret("u1", "regcred", "h2")]))),
        Access::Granted
    );
    assert!(matches!(
        r.access("198.18.0.9:5000/team/alias:1.0", REF, Some(&PodCredentials::secrets(&[secret("u1", "regcred", "h2")]))),
        Access::MustPull(_)
    ));
    // Pulled anonymously later: anyone, without asking for the pod's secrets.
    r.record_pulled(IMAGE, REF, PulledWith::NodeAccessible).unwrap();
    assert_eq!(r.access(IMAGE, REF, None), Access::Granted);
}

#[test]
fn a_service_account_pulled_image_is_granted_to_that_service_account_only() {
    let (_d, r) = records(VerificationPolicy::NeverVerifyPreloadedImages);
    let account = |uid: &str, name: &str| ServiceAccountCoordinates { uid: uid.into(), namespace: "team".into(), name: name.into() };
    r.record_pulled(IMAGE, REF, PulledWith::ServiceAccount(account("sa1", "puller"))).unwrap();
    r.record_pulled(IMAGE, REF, PulledWith::ServiceAccount(account("sa0", "builder"))).unwrap();
    let text = std::fs::read_to_string(r.pulled().join(file_name(REF))).unwrap();
    assert!(text.contains(r#""kubernetesServiceAccounts":[{"uid":"sa0","namespace":"team","name":"builder"},{"uid":"sa1","namespace":"team","name":"puller"}]"#), "upstream's field, sorted by namespace and name: {text}");
    assert_eq!(r.access(IMAGE, REF, None), Access::NeedsPodCredentials);
    let with = |a: ServiceAccountCoordinates| PodCredentials { secrets: vec![], service_account: Some(a) };
    assert_eq!(r.access(IMAGE, REF, Some(&with(account("sa1", "puller")))), Access::Granted);
    assert!(
        matches!(r.access(IMAGE, REF, Some(&with(account("sa2", "puller")))), Access::MustPull(_)),
        "a service account of the same name made again is another one"
    );
    assert!(matches!(r.access(IMAGE, REF, Some(&PodCredentials::default())), Access::MustPull(_)));
    r.record_pulled(IMAGE, REF, PulledWith::NodeAccessible).unwrap();
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::default())), Access::Granted, "an anonymous pull opens it to every pod");
}

#[test]
fn policies_decide_what_is_verified() {
    let present_unrecorded = |policy| {
        let (_d, r) = records(policy);
        r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[])))
    };
    assert_eq!(present_unrecorded(VerificationPolicy::NeverVerifyPreloadedImages), Access::NotVerified, "preloaded");
    assert!(matches!(present_unrecorded(VerificationPolicy::AlwaysVerify), Access::MustPull(_)));
    assert_eq!(present_unrecorded(VerificationPolicy::NeverVerify), Access::NotVerified);
    let allow = VerificationPolicy::NeverVerifyAllowlistedImages(vec!["198.18.0.9:5000/team/*".into()]);
    assert_eq!(present_unrecorded(allow), Access::NotVerified);
    let deny = VerificationPolicy::NeverVerifyAllowlistedImages(vec!["198.18.0.9:5000/other".into()]);
    assert!(matches!(present_unrecorded(deny), Access::MustPull(_)));
    assert!(
        allowlisted("r.io/a/b:1", &["r.io/a/*".into()])
            && !allowlisted("r.io/ab:1", &["r.io/a/*".into()])
            && allowlisted("r.io/ab@sha256:x", &["r.io/ab".into()])
    );

    // An intent alone (a pull in flight or interrupted) makes the image the kubelet's.
    let (_d, r) = records(VerificationPolicy::NeverVerifyPreloadedImages);
    r.record_intent(IMAGE).unwrap();
    assert!(matches!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[]))), Access::MustPull(_)));
    r.finish_intent(IMAGE);
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[]))), Access::NotVerified);
    assert!(!r.pulling().join(file_name(IMAGE)).exists());
}

#[test]
fn interrupted_pulls_corrupt_records_and_gc() {
    let (d, r) = records(VerificationPolicy::NeverVerifyPreloadedImages);
    r.record_intent(IMAGE).unwrap();
    r.record_intent("absent:1").unwrap();
    // A restart: a new manager finds the intents on disk.
    let r = PullRecords::new(d.path(), VerificationPolicy::NeverVerifyPreloadedImages);
    let image = kubelet_cri::api::Image { id: REF.into(), repo_tags: vec![IMAGE.into()], ..Default::default() };
    r.reconcile_intents(&[image]);
    assert!(!r.pulling().join(file_name(IMAGE)).exists(), "the present image's intent became a record");
    assert!(r.pulling().join(file_name("absent:1")).exists(), "the absent image's intent stays");
    assert!(
        matches!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u1", "s", "h")]))), Access::MustPull(_)),
        "a record without credentials is verified"
    );
    // A corrupt record: pull.
    std::fs::write(r.pulled().join(file_name(REF)), "{not json").unwrap();
    assert_eq!(r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[]))), Access::MustPull("unreadable pull record"));
    // GC: records of removed images go, those of present ones stay.
    r.record_pulled(IMAGE, "sha256:2222", PulledWith::NodeAccessible).unwrap();
    r.record_pulled(IMAGE, "sha256:3333", PulledWith::NodeAccessible).unwrap();
    let later = SystemTime::now() + std::time::Duration::from_secs(5);
    r.prune(&HashSet::from(["sha256:3333".to_string()]), later);
    assert!(r.record("sha256:2222").unwrap().is_none());
    assert!(r.record("sha256:3333").unwrap().is_some());
}

#[test]
fn checks_and_files_are_counted_for_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = std::sync::Arc::new(crate::metrics::KubeletMetrics::new());
    let r = PullRecords::new(dir.path(), VerificationPolicy::NeverVerifyPreloadedImages).with_metrics(metrics.clone());
    r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[])));
    r.record_pulled(IMAGE, REF, PulledWith::Secret(secret("u1", "regcred", "h1"))).unwrap();
    r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[])));
    r.access(IMAGE, REF, Some(&PodCredentials::secrets(&[secret("u1", "regcred", "h1")])));
    r.record_intent("other:1").unwrap();
    assert_eq!(metrics.image_mustpull_checks.get(&["credentialPolicyAllowed"]), 1.0);
    assert_eq!(metrics.image_mustpull_checks.get(&["mustAuthenticate"]), 1.0);
    assert_eq!(metrics.image_mustpull_checks.get(&["credentialRecordFound"]), 1.0);
    let mut out = String::new();
    metrics.render(&mut out);
    assert!(
        out.contains("\nkubelet_imagemanager_ondisk_pullintents 1\n") && out.contains("\nkubelet_imagemanager_ondisk_pulledrecords 1\n"),
        "{out}"
    );
    assert!(out.contains("kubelet_imagemanager_image_mustpull_checks_total{result=\"mustAuthenticate\"} 1"), "{out}");
}
