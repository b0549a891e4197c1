//! Bootstrap and rotation against a fake CSR API that signs with a test CA.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus};

use super::bootstrap::{Bootstrap, TMP_KEY_FILE, client_config_still_valid};
use super::csr::{CsrError, Request};
use super::rotation::{Rotation, rotation_deadline};
use super::store::CertStore;
use super::*;
use kubelet_types::certificate_metrics::CertificateKind;

/// What the fake signer does with requests.
#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Issue,
    Deny,
    Ignore,
}

struct FakeCsrs {
    ca_key: rcgen::KeyPair,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    verdict: Verdict,
    csrs: Mutex<BTreeMap<String, CertificateSigningRequest>>,
    creates: Mutex<u32>,
}

impl FakeCsrs {
    fn new(verdict: Verdict) -> Arc<Self> {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::Issuer::new(params, rcgen::KeyPair::from_pem(&ca_key.serialize_pem()).unwrap());
        Arc::new(Self { ca_key, ca, verdict, csrs: Mutex::default(), creates: Mutex::new(0) })
    }

    fn sign(&self, request_pem: &str) -> String {
        let mut req = rcgen::CertificateSigningRequestParams::from_pem(request_pem).unwrap();
        req.params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        req.params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let _ = &self.ca_key;
        req.signed_by(&self.ca).unwrap().pem()
    }
}

#[async_trait]
impl CsrApi for FakeCsrs {
    async fn create_csr(&self, csr: &CertificateSigningRequest) -> Result<CertificateSigningRequest, ApiError> {
        *self.creates.lock().unwrap() += 1;
        let name = csr.metadata.name.clone().unwrap();
        let mut csrs = self.csrs.lock().unwrap();
        if csrs.contains_key(&name) {
            return Err(ApiError::AlreadyExists { what: name });
        }
        csrs.insert(name, csr.clone());
        Ok(csr.clone())
    }

    async fn get_csr(&self, name: &str) -> Result<Option<CertificateSigningRequest>, ApiError> {
        let mut csrs = self.csrs.lock().unwrap();
        let Some(csr) = csrs.get_mut(name) else { return Ok(None) };
        let condition = |t: &str| CertificateSigningRequestCondition {
            type_: t.into(),
            status: "True".into(),
            reason: Some("Test".into()),
            message: Some(format!("{t} by the test")),
            ..Default::default()
        };
        match self.verdict {
            Verdict::Issue => {
                let pem = String::from_utf8(csr.spec.request.0.clone()).unwrap();
                csr.status = Some(CertificateSigningRequestStatus {
                    conditions: Some(vec![condition("Approved")]),
                    certificate: Some(ByteString(self.sign(&pem).into_bytes())),
                });
            }
            Verdict::Deny => {
                csr.status = Some(CertificateSigningRequestStatus { conditions: Some(vec![condition("Denied")]), certificate: None })
            }
            Verdict::Ignore => {}
        }
        Ok(Some(csr.clone()))
    }
}

fn bootstrap_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("bootstrap-kubelet.conf");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://198.18.255.1:6443\", certificate-authority-data: \"Q0EtUEVN\"}\nusers:\n- name: b\n  user: {token: abcdef.0123456789abcdef}\ncontexts:\n- name: x\n  context: {cluster: c, user: b}\ncurrent-context: x\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn bootstrap_writes_the_certificate_link_and_kubeconfig_and_a_restart_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, certs) = (dir.path().join("kubelet.conf"), dir.path().join("pki"));
    let bootstrap = bootstrap_kubeconfig(dir.path());
    let api = FakeCsrs::new(Verdict::Issue);
    let b = Bootstrap {
        kubeconfig: &kubeconfig,
        bootstrap_kubeconfig: &bootstrap,
        cert_dir: &certs,
        node_name: "n1",
        timeout: Duration::from_secs(5),
    };
    assert!(b.load_client_cert(api.as_ref()).await.unwrap(), "bootstrapped");
    let csr = api.csrs.lock().unwrap().values().next().unwrap().clone();
    assert!(csr.metadata.name.as_deref().unwrap().starts_with("node-csr-"));
    assert_eq!(csr.spec.signer_name, "kubernetes.io/kube-apiserver-client-kubelet");
    assert_eq!(csr.spec.usages.as_deref().unwrap(), ["digital signature", "client auth"]);
    let req = rcgen::CertificateSigningRequestParams::from_pem(std::str::from_utf8(&csr.spec.request.0).unwrap()).unwrap();
    let dn: Vec<String> = req.params.distinguished_name.iter().map(|(_, v)| format!("{v:?}")).collect();
    assert!(dn.iter().any(|v| v.contains("system:node:n1")) && dn.iter().any(|v| v.contains("system:nodes")), "{dn:?}");

    let current = CertStore::client(&certs).current_path();
    assert!(std::fs::read_link(&current).unwrap().file_name().unwrap().to_str().unwrap().starts_with("kubelet-client-2"));
    assert!(!certs.join(TMP_KEY_FILE).exists(), "the pending key is gone once the certificate is stored");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains("server: \"https://198.18.255.1:6443\"")
            && text.contains("certificate-authority-data: Q0EtUEVN")
            && text.contains(&format!("client-key: \"{}\"", current.display())),
        "{text}"
    );
    assert_eq!(client_config_still_valid(&kubeconfig, k8s_openapi::jiff::Timestamp::now().as_second()), Ok(()));

    // A restart: the kubeconfig is valid, nothing is requested.
    assert!(!b.load_client_cert(api.as_ref()).await.unwrap());
    assert_eq!(*api.creates.lock().unwrap(), 1);
    // Expired (as seen from 2101): bootstrap again, with the current certificate's key.
    assert!(client_config_still_valid(&kubeconfig, 4_200_000_000).unwrap_err().contains("expired"));
}

#[tokio::test]
async fn denied_and_never_issued_requests_are_named_in_the_error_and_the_key_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, certs) = (dir.path().join("kubelet.conf"), dir.path().join("pki"));
    let bootstrap = bootstrap_kubeconfig(dir.path());
    let b = Bootstrap {
        kubeconfig: &kubeconfig,
        bootstrap_kubeconfig: &bootstrap,
        cert_dir: &certs,
        node_name: "n1",
        timeout: Duration::from_millis(1500),
    };
    let err = b.load_client_cert(FakeCsrs::new(Verdict::Deny).as_ref()).await.unwrap_err();
    assert!(
        err.to_string().starts_with("certificate signing request node-csr-") && err.to_string().contains("is denied, reason: Test"),
        "{err}"
    );
    let key = std::fs::read_to_string(certs.join(TMP_KEY_FILE)).unwrap();
    let err = b.load_client_cert(FakeCsrs::new(Verdict::Ignore).as_ref()).await.unwrap_err();
    assert!(err.to_string().contains("timed out after 1.5s waiting for certificate signing request node-csr-"), "{err}");
    assert_eq!(
        std::fs::read_to_string(certs.join(TMP_KEY_FILE)).unwrap(),
        key,
        "the same key (and so the same request) on the next attempt"
    );
    assert!(!kubeconfig.exists());

    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "not: [a kubeconfig").unwrap();
    let b = Bootstrap { bootstrap_kubeconfig: &bad, ..b };
    let err = b.load_client_cert(FakeCsrs::new(Verdict::Issue).as_ref()).await.unwrap_err();
    assert!(err.to_string().starts_with(&format!("unable to load bootstrap kubeconfig {}: ", bad.display())), "{err}");
}

#[test]
fn request_names_follow_the_key_subject_and_usages() {
    let key = super::csr::new_key_pem().unwrap();
    let a = Request::client("n1").name(&key).unwrap();
    assert_eq!(a, Request::client("n1").name(&key).unwrap(), "a retry finds the same request");
    assert_ne!(a, Request::client("n2").name(&key).unwrap());
    assert_ne!(a, Request::client("n1").name(&super::csr::new_key_pem().unwrap()).unwrap());
    assert_eq!(a.len(), "node-csr-".len() + 43, "base64url of 32 bytes");
    assert!(matches!(Request::client("n1").name("garbage"), Err(CsrError::Generate(_))));
}

#[test]
fn rotation_deadlines_fall_between_70_and_90_percent() {
    assert_eq!(rotation_deadline(1000, 2000, 0.0), 1700);
    assert_eq!(rotation_deadline(1000, 2000, 0.5), 1800);
    assert_eq!(rotation_deadline(1000, 2000, 0.999_999), 1900);
    for _ in 0..100 {
        let j = super::rotation::jitter();
        assert!((0.0..1.0).contains(&j));
    }
}

#[tokio::test]
async fn renewal_stores_a_new_pair_and_calls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::client(dir.path());
    let rotated = Arc::new(Mutex::new(Vec::new()));
    let seen = rotated.clone();
    let r = Rotation {
        api: FakeCsrs::new(Verdict::Issue),
        store: store.clone(),
        request: Arc::new(|| Request::serving("n1", vec!["n1".into()], vec!["198.18.255.1".parse().unwrap()])),
        on_rotate: Arc::new(move |f: &std::path::Path| seen.lock().unwrap().push(f.to_path_buf())),
        timeout: Duration::from_secs(5),
        exit_after_expiry: Some(Duration::from_secs(300)),
        kind: CertificateKind::Serving,
        observer: None,
    };
    let file = r.renew().await.unwrap();
    assert_eq!(std::fs::read_link(store.current_path()).unwrap(), file);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(r.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(rotated.lock().unwrap().is_empty(), "a certificate valid until 2100 is not renewed yet");

    // Expired long ago and no signer answering: rotation gives up so the kubelet exits.
    let (cert, key) = super::store::tests::self_signed(2001);
    store.update(&cert, &key, "2001-01-01-00-00-00").unwrap();
    let r = Rotation {
        api: FakeCsrs::new(Verdict::Ignore),
        store: store.clone(),
        request: Arc::new(|| Request::client("n1")),
        on_rotate: Arc::new(|_: &std::path::Path| {}),
        timeout: Duration::from_secs(1),
        exit_after_expiry: Some(Duration::from_secs(300)),
        kind: CertificateKind::Client,
        observer: None,
    };
    let err = r.run(tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("expired at 2001-01-01T00:00:00Z"), "{err}");
}

#[tokio::test]
async fn rotation_reports_the_certificate_in_use_failures_and_rotations() {
    use test_support::{CertificateReport as R, RecordingCertificates};
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::client(dir.path());
    // Past its deadline (2000 → 2001): renewed at once.
    let (cert, key) = super::store::tests::self_signed(2001);
    store.update(&cert, &key, "2001-01-01-00-00-00").unwrap();
    let (not_before, not_after) = (946_684_800, 978_307_200); // 2000-01-01, 2001-01-01

    let seen = Arc::new(RecordingCertificates::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let r = Rotation {
        api: FakeCsrs::new(Verdict::Issue),
        store: store.clone(),
        request: Arc::new(|| Request::client("n1")),
        on_rotate: Arc::new(|_: &std::path::Path| {}),
        timeout: Duration::from_secs(5),
        exit_after_expiry: None,
        kind: CertificateKind::Client,
        observer: Some(seen.clone()),
    };
    let task = tokio::spawn(r.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    let reports = seen.reports();
    assert_eq!(reports[..2], [R::Rotating(CertificateKind::Client), R::Current(CertificateKind::Client, not_after)], "{reports:?}");
    let R::Rotated(CertificateKind::Client, lived) = reports[2] else { panic!("{reports:?}") };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    assert!((lived - (now - not_before) as f64).abs() < 5.0, "lived from notBefore: {lived}");
    assert!(matches!(reports[3], R::Current(CertificateKind::Client, t) if t > now), "the new certificate: {reports:?}");

    // A signer that never answers: a failed renewal is counted.
    store.update(&cert, &key, "2001-01-01-00-00-01").unwrap();
    let seen = Arc::new(RecordingCertificates::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let r = Rotation {
        api: FakeCsrs::new(Verdict::Ignore),
        store: store.clone(),
        request: Arc::new(|| Request::client("n1")),
        on_rotate: Arc::new(|_: &std::path::Path| {}),
        timeout: Duration::from_millis(300),
        exit_after_expiry: None,
        kind: CertificateKind::Client,
        observer: Some(seen.clone()),
    };
    let task = tokio::spawn(r.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(seen.reports().contains(&R::RenewalFailed(CertificateKind::Client)), "{:?}", seen.reports());
}
