use k8s_openapi::api::certificates::v1::PodCertificateRequestStatus;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use test_support::FakeVolumeApi;

use super::*;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn time(at: SystemTime) -> Option<Time> {
    Some(Time(k8s_openapi::jiff::Timestamp::try_from(at).unwrap()))
}

fn condition(type_: &str, reason: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: "True".into(),
        reason: reason.into(),
        message: format!("{reason} by test"),
        last_transition_time: time(t(0)).unwrap(),
        observed_generation: None,
    }
}

fn issued(chain: &str, begin_refresh_at: SystemTime) -> PodCertificateRequestStatus {
    PodCertificateRequestStatus {
        conditions: Some(vec![condition("Issued", "Issued")]),
        certificate_chain: Some(chain.into()),
        not_before: time(t(0)),
        begin_refresh_at: time(begin_refresh_at),
        not_after: time(begin_refresh_at + Duration::from_secs(3600)),
    }
}

fn chain_pem(tag: u8) -> String {
    pem::encode_config(&pem::Pem::new("CERTIFICATE", vec![tag; 40]), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn pod(uid: &str) -> Pod {
    let mut p = Pod {
        spec: Some(PodSpec { service_account_name: Some("app".into()), node_name: Some("node-a".into()), ..Default::default() }),
        ..Default::default()
    };
    p.metadata.name = Some(format!("web-{uid}"));
    p.metadata.namespace = Some("prod".into());
    p.metadata.uid = Some(uid.into());
    p
}

fn source(key_type: &str) -> PodCertificateProjection {
    PodCertificateProjection {
        signer_name: "example.com/mesh".into(),
        key_type: key_type.into(),
        credential_bundle_path: Some("bundle.pem".into()),
        ..Default::default()
    }
}

fn api() -> FakeVolumeApi {
    let api = FakeVolumeApi::new();
    api.put_service_account("prod", "app", "sa-uid", &[]);
    api.put_node("node-a", "node-uid");
    api
}

#[test]
fn keys_of_the_supported_types_with_a_stub_request() {
    for kt in ["ED25519", "ECDSAP256", "ECDSAP384"] {
        let k = new_key(kt).unwrap();
        let text = String::from_utf8(k.key_pem).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{kt}: PKCS#8 PEM: {text}");
        assert_eq!(k.stub_request.first(), Some(&0x30), "{kt}: a DER SEQUENCE");
    }
    let err = new_key("RSA3072").err().unwrap();
    assert_eq!(err, PodCertificateError::UnsupportedKeyType("RSA3072".into()));
    assert!(err.to_string().contains("\"RSA3072\" is not supported by this kubelet"), "{err}");
    assert!(new_key("DSA").err().unwrap().to_string().contains("unknown key type \"DSA\""));
}

#[test]
fn observe_reads_the_signers_answer() {
    let mut pcr = PodCertificateRequest::default();
    assert_eq!(observe(&pcr), Answer::Pending);
    pcr.status = Some(PodCertificateRequestStatus { conditions: Some(vec![condition("Denied", "Policy")]), ..Default::default() });
    assert_eq!(observe(&pcr), Answer::Denied { reason: "Policy".into(), message: "Policy by test".into() });
    // A chain with CRLF line ends and a block of another type comes back as plain CERTIFICATE blocks.
    let messy = pem::encode_config(
        &pem::Pem::new("TRUSTED CERTIFICATE", vec![7; 40]),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::CRLF),
    );
    pcr.status = Some(issued(&messy, t(600)));
    let Answer::Issued { chain, begin_refresh_at, not_after } = observe(&pcr) else { panic!("issued") };
    assert_eq!(String::from_utf8(chain).unwrap(), chain_pem(7));
    assert_eq!((begin_refresh_at, not_after), (t(600), t(4200)));
}

#[tokio::test]
async fn requests_are_filed_issued_refreshed_and_refused() {
    let api = api();
    let certs = PodCertificates::default();
    let a: &dyn VolumeApi = &api;
    let web = pod("u1");

    // First sync: a request is filed for the pod, its service account and the node.
    let err = certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), t(0)).await.unwrap_err();
    assert_eq!(err, PodCertificateError::NotIssued);
    assert_eq!(err.to_string(), "credential bundle is not issued yet");
    let reqs = api.pod_certificate_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.metadata.generate_name.as_deref(), Some("req-"));
    let s = &r.spec;
    assert_eq!((s.signer_name.as_str(), s.pod_name.as_str(), s.pod_uid.as_str()), ("example.com/mesh", "web-u1", "u1"));
    assert_eq!((s.service_account_name.as_str(), s.service_account_uid.as_str()), ("app", "sa-uid"));
    assert_eq!((s.node_name.as_str(), s.node_uid.as_str()), ("node-a", "node-uid"));
    assert_eq!(r.metadata.owner_references.as_ref().unwrap()[0].uid, "u1");
    assert!(!s.stub_pkc_s10_request.0.is_empty());

    // Still pending: no second request.
    assert_eq!(certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), t(10)).await.unwrap_err(), PodCertificateError::NotIssued);
    assert_eq!(api.pod_certificate_requests().len(), 1);

    // Issued: the key made for it and the chain.
    api.set_pod_certificate_status("prod", "req-1", issued(&chain_pem(1), t(3600)));
    let (key, chain) = certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), t(20)).await.unwrap();
    assert!(String::from_utf8(key.clone()).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(chain, chain_pem(1).into_bytes());

    // Before beginRefreshAt nothing is filed; after it (and its jitter) a new key is requested
    // while the current pair is still served.
    certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), t(3599)).await.unwrap();
    assert_eq!(api.pod_certificate_requests().len(), 1);
    let late = t(3600) + MAX_JITTER;
    let (same_key, same_chain) = certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), late).await.unwrap();
    assert_eq!((same_key.as_slice(), same_chain.as_slice()), (key.as_slice(), chain.as_slice()));
    assert_eq!(api.pod_certificate_requests().len(), 2);
    api.set_pod_certificate_status("prod", "req-2", issued(&chain_pem(2), t(7200)));
    let (new_key, new_chain) = certs.bundle(Some(a), &web, "mesh", 0, &source("ECDSAP256"), late).await.unwrap();
    assert_ne!(new_key, key, "a new key for the refresh");
    assert_eq!(new_chain, chain_pem(2).into_bytes());

    // Another pod's request is denied: an error for good, no more API calls.
    let other = pod("u2");
    certs.bundle(Some(a), &other, "mesh", 0, &source("ED25519"), t(0)).await.unwrap_err();
    api.set_pod_certificate_status(
        "prod",
        "req-3",
        PodCertificateRequestStatus { conditions: Some(vec![condition("Denied", "Policy")]), ..Default::default() },
    );
    let err = certs.bundle(Some(a), &other, "mesh", 0, &source("ED25519"), t(1)).await.unwrap_err();
    assert_eq!(err.to_string(), "PodCertificateRequest prod/req-3 was permanently denied: reason=\"Policy\" message=\"Policy by test\"");
    assert!(matches!(&err, PodCertificateError::Denied { name, reason, .. } if name == "req-3" && reason == "Policy"), "{err}");
    api.fail_with(Some("down"));
    assert_eq!(certs.bundle(Some(a), &other, "mesh", 0, &source("ED25519"), t(2)).await.unwrap_err(), err);
    api.fail_with(None);

    // Forgotten with its pod: a pod of that UID starts over.
    certs.forget_pod("u2");
    certs.bundle(Some(a), &other, "mesh", 0, &source("ED25519"), t(3)).await.unwrap_err();
    assert_eq!(api.pod_certificate_requests().len(), 4);
}

#[tokio::test]
async fn a_deleted_request_is_filed_again_after_ten_minutes() {
    let api = api();
    let certs = PodCertificates::default();
    let a: &dyn VolumeApi = &api;
    api.set_now(t(0));
    certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), t(0)).await.unwrap_err();
    api.delete_pod_certificate_request("prod", "req-1");
    assert_eq!(certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), t(60)).await.unwrap_err(), PodCertificateError::NotIssued);
    let later = t(0) + ASSUME_DELETED_AFTER + MAX_JITTER + Duration::from_secs(1);
    let err = certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), later).await.unwrap_err();
    assert!(err.to_string().contains("prod/req-1 appears to have been deleted"), "{err}");
    certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), later).await.unwrap_err();
    assert_eq!(api.pod_certificate_requests().len(), 1, "req-2 filed, req-1 gone");
    assert_eq!(api.pod_certificate_requests()[0].metadata.name.as_deref(), Some("req-2"));
}

#[tokio::test]
async fn failures_name_what_is_missing() {
    let certs = PodCertificates::default();
    let err = certs.bundle(None, &pod("u1"), "mesh", 0, &source("ED25519"), t(0)).await.unwrap_err();
    assert!(err.to_string().contains("static kubelet mode"), "{err}");
    assert_eq!(err, PodCertificateError::StaticMode);
    let api = FakeVolumeApi::new();
    let a: &dyn VolumeApi = &api;
    let err = certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), t(0)).await.unwrap_err();
    assert_eq!(err, PodCertificateError::ServiceAccountNotFound("app".into()));
    let err = err.to_string();
    assert!(err.contains("while fetching service account") && err.contains("\"app\" not found"), "{err}");
    api.put_service_account("prod", "app", "sa-uid", &[]);
    let err = certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("ED25519"), t(0)).await.unwrap_err();
    assert!(err.to_string().contains("nodes \"node-a\" not found"), "{err}");
    api.put_node("node-a", "node-uid");
    let err = certs.bundle(Some(a), &pod("u1"), "mesh", 0, &source("RSA4096"), t(0)).await.unwrap_err();
    assert!(err.to_string().contains("RSA4096"), "{err}");
    assert!(api.pod_certificate_requests().is_empty());
}
