use std::collections::BTreeMap;

use super::*;

fn token() -> BootstrapToken {
    BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
}

fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

fn kubeconfig(ca: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: https://198.18.255.1:6443\n    certificate-authority-data: {}\n",
        STANDARD.encode(ca)
    )
}

/// A detached JWS as the bootstrapsigner writes it.
fn sign(payload: &str, id: &str, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{id}"}}"#));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload)).as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn cluster_info(kc: &str, jws: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(KUBECONFIG_KEY.to_owned(), kc.to_owned()), (format!("{SIGNATURE_PREFIX}abcdef"), jws.to_owned())])
}

#[test]
fn a_signed_cluster_info_with_the_pinned_ca_is_trusted() {
    let ca = ca_pem();
    let kc = kubeconfig(&ca);
    let info = verify(&cluster_info(&kc, &sign(&kc, "abcdef", "0123456789abcdef")), &token()).unwrap();
    assert_eq!(info.server, "https://198.18.255.1:6443");
    assert_eq!(info.ca_pem, ca.as_bytes());
    let pin = ca_cert_hashes(ca.as_bytes()).unwrap().remove(0);
    check_pins(&info, &[parse_pin(&pin.to_uppercase().replace("SHA256", "sha256")).unwrap()]).unwrap();
    let other = ca_cert_hashes(ca_pem().as_bytes()).unwrap().remove(0);
    let err = check_pins(&info, &[other]).unwrap_err();
    assert!(matches!(err, DiscoveryError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("refusing to trust https://198.18.255.1:6443"), "{err}");
}

#[test]
fn a_wrong_secret_a_missing_signature_and_a_tampered_kubeconfig_are_refused() {
    let kc = kubeconfig(&ca_pem());
    let wrong = sign(&kc, "abcdef", "ffffffffffffffff");
    assert_eq!(verify(&cluster_info(&kc, &wrong), &token()), Err(DiscoveryError::BadSignature { id: "abcdef".into() }));
    let mut unsigned = cluster_info(&kc, "");
    unsigned.remove(&format!("{SIGNATURE_PREFIX}abcdef"));
    assert_eq!(verify(&unsigned, &token()), Err(DiscoveryError::NotSigned { id: "abcdef".into() }));
    let tampered = kc.replace("198.18.255.1", "198.18.255.2");
    let good = sign(&kc, "abcdef", "0123456789abcdef");
    assert!(matches!(verify(&cluster_info(&tampered, &good), &token()), Err(DiscoveryError::BadSignature { .. })));
}

#[test]
fn malformed_signatures_and_pins_say_what_is_wrong() {
    let kc = kubeconfig(&ca_pem());
    for (jws, want) in [
        ("abc", "detached JWS"),
        ("!!..abc", "base64url"),
        (&format!("{}..AAAA", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)), "expected HS256"),
        (&format!("{}..AAAA", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"zzzzzz"}"#)), "another token's"),
    ] {
        let err = verify(&cluster_info(&kc, jws), &token()).unwrap_err().to_string();
        assert!(err.contains(want), "{jws}: {err}");
    }
    for bad in ["sha1:00", "sha256:xyz", "0123"] {
        assert!(matches!(parse_pin(bad), Err(DiscoveryError::BadPin(_))), "{bad}");
    }
    let no_ca = "clusters:\n- cluster: {server: \"https://x\"}\n";
    let err = verify(&cluster_info(no_ca, &sign(no_ca, "abcdef", "0123456789abcdef")), &token()).unwrap_err();
    assert_eq!(err, DiscoveryError::Kubeconfig("no certificate-authority-data".into()));
}
