use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use test_support::FakeVolumeApi;

use super::*;

fn cert_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().self_signed(&key).unwrap().pem()
}

fn blocks(pem_bytes: &[u8]) -> Vec<Vec<u8>> {
    pem::parse_many(pem_bytes).unwrap().into_iter().map(|p| p.into_contents()).collect()
}

fn by_signer(signer: &str, labels: Option<&[(&str, &str)]>, optional: bool) -> ClusterTrustBundleProjection {
    ClusterTrustBundleProjection {
        signer_name: Some(signer.into()),
        label_selector: labels.map(|l| LabelSelector {
            match_labels: Some(l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()),
            match_expressions: None,
        }),
        optional: Some(optional),
        path: "ca.pem".into(),
        ..Default::default()
    }
}

fn by_name(name: &str, optional: bool) -> ClusterTrustBundleProjection {
    ClusterTrustBundleProjection { name: Some(name.into()), optional: Some(optional), path: "ca.pem".into(), ..Default::default() }
}

#[test]
fn selectors_render_in_the_apis_syntax() {
    assert_eq!(selector_string(None).unwrap(), None, "unset selects nothing");
    assert_eq!(selector_string(Some(&LabelSelector::default())).unwrap(), Some(String::new()), "empty selects everything");
    let expr = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| v.to_string()).collect()).filter(|v: &Vec<String>| !v.is_empty()),
    };
    let sel = LabelSelector {
        match_labels: Some(BTreeMap::from([("tier".to_string(), "root".to_string())])),
        match_expressions: Some(vec![
            expr("zone", "In", &["b", "a"]),
            expr("old", "DoesNotExist", &[]),
            expr("env", "NotIn", &["dev"]),
            expr("app", "Exists", &[]),
        ]),
    };
    assert_eq!(selector_string(Some(&sel)).unwrap().unwrap(), "app,env notin (dev),!old,tier=root,zone in (a,b)");
    let bad = LabelSelector { match_expressions: Some(vec![expr("k", "Near", &["x"])]), ..Default::default() };
    assert!(selector_string(Some(&bad)).unwrap_err().to_string().contains("\"Near\" is not a valid"));
    let bad = LabelSelector { match_expressions: Some(vec![expr("k", "In", &[])]), ..Default::default() };
    assert!(selector_string(Some(&bad)).unwrap_err().to_string().contains("values must be non-empty"));
    let bad = LabelSelector { match_expressions: Some(vec![expr("k", "Exists", &["x"])]), ..Default::default() };
    assert!(selector_string(Some(&bad)).unwrap_err().to_string().contains("values must be empty"));
}

#[test]
fn normalize_keeps_each_certificate_once_in_a_stable_order() {
    let (a, b, c) = (cert_pem("a"), cert_pem("b"), cert_pem("c"));
    let one = normalize([format!("{a}{b}").as_str(), format!("comment\n{b}\n{c}").as_str()]).unwrap();
    let two = normalize([c.as_str(), a.as_str(), b.as_str(), a.as_str()]).unwrap();
    assert_eq!(one, two);
    let got = blocks(&one);
    assert_eq!(got.len(), 3);
    let mut want: Vec<Vec<u8>> = [&a, &b, &c].iter().flat_map(|p| blocks(p.as_bytes())).collect();
    want.sort();
    assert_eq!(got, want);
    let text = String::from_utf8(one).unwrap();
    assert!(!text.contains('\r') && text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    assert!(normalize([] as [&str; 0]).unwrap().is_empty());
    assert!(normalize(["-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"]).is_err());
}

#[tokio::test]
async fn anchors_by_name_and_by_signer_with_optional_and_cache() {
    let api = FakeVolumeApi::new();
    let (a, b, c) = (cert_pem("a"), cert_pem("b"), cert_pem("c"));
    api.put_trust_bundle("named", None, &[], &a);
    api.put_trust_bundle("s-1", Some("example.com/signer"), &[("tier", "root")], &format!("{b}{a}"));
    api.put_trust_bundle("s-2", Some("example.com/signer"), &[("tier", "leaf")], &c);
    api.put_trust_bundle("other", Some("example.com/other"), &[("tier", "root")], &c);
    let bundles = TrustBundles::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let dyn_api: &dyn VolumeApi = &api;

    assert_eq!(blocks(&bundles.anchors(Some(dyn_api), &by_name("named", false), t0).await.unwrap()), blocks(a.as_bytes()));
    // The optional source first: its empty answer must not satisfy the required one.
    assert!(bundles.anchors(Some(dyn_api), &by_name("gone", true), t0).await.unwrap().is_empty());
    let err = bundles.anchors(Some(dyn_api), &by_name("gone", false), t0).await.unwrap_err();
    assert!(matches!(err, TrustBundleError::NotFound(_)), "{err:?}");
    assert_eq!(err.to_string(), "while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io \"gone\" not found");

    let root = bundles.anchors(Some(dyn_api), &by_signer("example.com/signer", Some(&[("tier", "root")]), false), t0).await.unwrap();
    assert_eq!(blocks(&root).len(), 2, "the root bundle of this signer only");
    let all = bundles.anchors(Some(dyn_api), &by_signer("example.com/signer", Some(&[]), false), t0).await.unwrap();
    assert_eq!(blocks(&all).len(), 3, "an empty selector takes every bundle of the signer");
    let err = bundles.anchors(Some(dyn_api), &by_signer("example.com/signer", None, false), t0).await.unwrap_err().to_string();
    assert!(err.contains("matched zero"), "an unset selector matches nothing: {err}");
    assert!(bundles.anchors(Some(dyn_api), &by_signer("example.com/signer", None, true), t0).await.unwrap().is_empty());
    assert!(bundles.anchors(Some(dyn_api), &by_signer("example.com/none", Some(&[]), true), t0).await.unwrap().is_empty());
    let err = bundles.anchors(Some(dyn_api), &by_signer("example.com/none", Some(&[]), false), t0).await.unwrap_err().to_string();
    assert!(err.contains("matched zero"), "{err}");

    // Answers are reused within the TTL, then asked again.
    let reads = api.trust_bundle_reads();
    api.put_trust_bundle("named", None, &[], &b);
    let cached = bundles.anchors(Some(dyn_api), &by_name("named", false), t0 + Duration::from_secs(5)).await.unwrap();
    assert_eq!(blocks(&cached), blocks(a.as_bytes()));
    assert_eq!(api.trust_bundle_reads(), reads);
    let fresh = bundles.anchors(Some(dyn_api), &by_name("named", false), t0 + CACHE_TTL).await.unwrap();
    assert_eq!(blocks(&fresh), blocks(b.as_bytes()));
    assert_eq!(api.trust_bundle_reads(), reads + 1);

    // Failures are not cached and name the request.
    api.fail_with(Some("etcd down"));
    let err = bundles.anchors(Some(dyn_api), &by_name("s-1", false), t0).await.unwrap_err().to_string();
    assert!(err.contains("while getting ClusterTrustBundle") && err.contains("etcd down"), "{err}");
    api.fail_with(None);
    assert!(!bundles.anchors(Some(dyn_api), &by_name("s-1", false), t0).await.unwrap().is_empty());

    let neither = ClusterTrustBundleProjection { path: "x".into(), ..Default::default() };
    assert!(bundles.anchors(Some(dyn_api), &neither, t0).await.unwrap_err().to_string().contains("either name or signerName"));
    assert!(bundles.anchors(None, &by_name("named", false), t0).await.unwrap_err().to_string().contains("static kubelet mode"));
}
