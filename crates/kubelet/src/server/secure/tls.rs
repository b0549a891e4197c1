//! The serving certificate and the TLS settings of port 10250 (upstream
//! `InitializeTLS` in `cmd/kubelet/app/server.go`).
//!
//! `tlsCertFile`/`tlsPrivateKeyFile` when given; otherwise a self-signed certificate at
//! `<certDir>/kubelet.crt` and `kubelet.key` (`--cert-dir`, upstream's place; key mode 0600), made once and reused after a
//! restart. `tlsCipherSuites` (Go names) and `tlsMinVersion` restrict what rustls offers; client
//! certificates are verified against `authentication.x509.clientCAFile` but optional, so tokens
//! and anonymous requests still connect.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up; names the file or field.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a certificate, key or directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation or the configuration field of the file, e.g. `writing` or `tlsCertFile`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate or key file is not valid PEM, has no certificate, or was rejected by rustls.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// The configuration field of the file, e.g. `clientCAFile`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        reason: String,
    },
    /// Generating the self-signed serving certificate or its key failed.
    #[error("generating a self-signed serving certificate: {0}")]
    Generate(String),
    /// `tlsCipherSuites` leaves no TLS 1.2 suite rustls supports.
    #[error("tlsCipherSuites: {0}")]
    CipherSuites(String),
    /// `tlsMinVersion` is not a Go TLS version name; holds the configured value.
    #[error("tlsMinVersion: unknown version {0:?} (VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13)")]
    MinVersion(String),
    /// rustls refused the protocol versions with the chosen cipher suites.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// What the TLS layer needs from the kubelet's configuration.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `tlsCertFile`: the serving certificate (PEM); empty for the self-signed one.
    pub cert_file: String,
    /// `tlsPrivateKeyFile`: the serving certificate's key (PEM); empty for the self-signed one.
    pub key_file: String,
    /// `tlsCipherSuites`: Go cipher suite names to allow; empty for rustls' defaults. TLS 1.3
    /// suites are always offered.
    pub cipher_suites: Vec<String>,
    /// `tlsMinVersion`, e.g. `VersionTLS13`; empty (or below 1.2) means TLS 1.2.
    pub min_version: String,
    /// `authentication.x509.clientCAFile`: CA bundle client certificates are verified against;
    /// empty to not ask for client certificates.
    pub client_ca_file: String,
    /// `--cert-dir`, for the self-signed certificate.
    pub cert_dir: PathBuf,
    /// The node's name: a SAN of the self-signed certificate and the prefix of its CN.
    pub node_name: String,
    /// The node's IPs, SANs of the self-signed certificate.
    pub node_ips: Vec<IpAddr>,
    /// `serverTLSBootstrap`: the certificate comes from this resolver (the `kubelet-server`
    /// store, reloaded on rotation) instead of a file.
    pub serving_resolver: Option<Arc<dyn rustls::server::ResolvesServerCert>>,
}

/// The certificate and key files to serve: configured, or the self-signed pair (made if missing).
pub fn serving_cert_files(o: &TlsOptions) -> Result<(PathBuf, PathBuf), TlsError> {
    if !o.cert_file.is_empty() || !o.key_file.is_empty() {
        return Ok((o.cert_file.clone().into(), o.key_file.clone().into()));
    }
    let dir = o.cert_dir.clone();
    let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let (cert_pem, key_pem) = self_signed(&o.node_name, &o.node_ips, std::time::SystemTime::now())?;
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Io { what: "creating", path: dir.clone(), source })?;
    write_file(&key, key_pem.as_bytes(), 0o600)?;
    write_file(&cert, cert_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
    Ok((cert, key))
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Io { what: "writing", path: path.into(), source };
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(err)?;
    f.write_all(data).map_err(err)
}

/// A self-signed serving certificate as upstream makes one: CN `<host>@<unix seconds>`, SANs the
/// node name and IPs, valid for a year. Returns (certificate PEM, key PEM).
pub fn self_signed(node_name: &str, ips: &[IpAddr], now: std::time::SystemTime) -> Result<(String, String), TlsError> {
    let g = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let secs = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut sans = vec![node_name.to_string()];
    sans.extend(ips.iter().map(|ip| ip.to_string()));
    let mut params = rcgen::CertificateParams::new(sans).map_err(g)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{node_name}@{secs}"));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let start = now - std::time::Duration::from_secs(3600);
    params.not_before = start.into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 24 * 3600)).into();
    let key = rcgen::KeyPair::generate().map_err(g)?;
    let cert = params.self_signed(&key).map_err(g)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn provider(cipher_suites: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if cipher_suites.is_empty() {
        return Ok(provider);
    }
    let mut unknown = Vec::new();
    let wanted: Vec<String> = cipher_suites.iter().map(|s| s.trim().to_string()).collect();
    for name in &wanted {
        let known = provider.cipher_suites.iter().any(|s| suite_matches(s, name));
        if !known {
            unknown.push(name.clone());
        }
    }
    if !unknown.is_empty() {
        tracing::warn!("tlsCipherSuites: not supported here, ignored: {}", unknown.join(", "));
    }
    // TLS 1.3 suites cannot be configured in Go either; they are always offered.
    provider.cipher_suites.retain(|s| s.version() == &rustls::version::TLS13 || wanted.iter().any(|n| suite_matches(s, n)));
    if provider.cipher_suites.iter().all(|s| s.version() == &rustls::version::TLS13)
        && wanted.iter().all(|n| !n.starts_with("TLS_AES") && !n.starts_with("TLS_CHACHA"))
    {
        return Err(TlsError::CipherSuites(format!("none of {} is supported", wanted.join(", "))));
    }
    Ok(provider)
}

/// Go's suite names, with and without the `_SHA256` of the ChaCha20 suites.
fn suite_matches(suite: &rustls::SupportedCipherSuite, go_name: &str) -> bool {
    let ours = format!("{:?}", suite.suite());
    ours == go_name || ours.strip_suffix("_SHA256").is_some_and(|s| s == go_name && s.ends_with("CHACHA20_POLY1305"))
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn versions(min: &str) -> Result<&'static [&'static rustls::SupportedProtocolVersion], TlsError> {
    match min {
        "" | "VersionTLS12" => Ok(rustls::DEFAULT_VERSIONS),
        "VersionTLS10" | "VersionTLS11" => {
            tracing::warn!("tlsMinVersion {min}: TLS below 1.2 is not supported, using VersionTLS12");
            Ok(rustls::DEFAULT_VERSIONS)
        }
        "VersionTLS13" => Ok(TLS13_ONLY),
        other => Err(TlsError::MinVersion(other.into())),
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem { what, path: path.into(), reason };
    let data = std::fs::read(path).map_err(|source| TlsError::Io { what, path: path.into(), source })?;
    let certs = CertificateDer::pem_slice_iter(&data).collect::<Result<Vec<_>, _>>().map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The rustls server configuration of port 10250.
pub fn server_config(o: &TlsOptions) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(&o.cipher_suites)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(&o.min_version)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if o.client_ca_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let path = Path::new(&o.client_ca_file);
        let mut roots = RootCertStore::empty();
        for c in read_certs("clientCAFile", path)? {
            roots.add(c).map_err(|e| TlsError::Pem { what: "clientCAFile", path: path.into(), reason: e.to_string() })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Pem { what: "clientCAFile", path: path.into(), reason: e.to_string() })?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = match &o.serving_resolver {
        Some(resolver) => builder.with_cert_resolver(resolver.clone()),
        None => {
            let (cert_file, key_file) = serving_cert_files(o)?;
            let certs = read_certs("tlsCertFile", &cert_file)?;
            let key_data =
                std::fs::read(&key_file).map_err(|source| TlsError::Io { what: "tlsPrivateKeyFile", path: key_file.clone(), source })?;
            let key = PrivateKeyDer::from_pem_slice(&key_data).map_err(|e| TlsError::Pem {
                what: "tlsPrivateKeyFile",
                path: key_file.clone(),
                reason: e.to_string(),
            })?;
            builder.with_single_cert(certs, key).map_err(|e| TlsError::Pem {
                what: "tlsPrivateKeyFile",
                path: key_file,
                reason: e.to_string(),
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> TlsOptions {
        TlsOptions {
            cert_dir: dir.join("pki"),
            node_name: "node-1".into(),
            node_ips: vec!["198.18.255.1".parse().unwrap()],
            ..Default::default()
        }
    }

    #[test]
    fn self_signed_pair_is_made_once_with_a_private_key() {
        let d = tempfile::tempdir().unwrap();
        let o = opts(d.path());
        let (cert, key) = serving_cert_files(&o).unwrap();
        assert_eq!(cert, d.path().join("pki/kubelet.crt"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let first = std::fs::read(&cert).unwrap();
        server_config(&o).unwrap();
        serving_cert_files(&o).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "reused after a restart");
        let der = read_certs("tlsCertFile", &cert).unwrap().remove(0);
        let (cns, _) = super::super::x509_subject::subject_names(&der).unwrap();
        assert!(cns[0].starts_with("node-1@"), "{cns:?}");
    }

    #[test]
    fn bad_files_and_fields_are_named() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.cert_file = "/nonexistent/c.crt".into();
        o.key_file = "/nonexistent/c.key".into();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(e.starts_with("tlsCertFile /nonexistent/c.crt"), "{e}");
        let junk = d.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let mut o = opts(d.path());
        o.client_ca_file = junk.display().to_string();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(e.starts_with(&format!("clientCAFile {}", junk.display())), "{e}");
        let mut o = opts(d.path());
        o.min_version = "TLS9".into();
        assert!(server_config(&o).unwrap_err().to_string().starts_with("tlsMinVersion"));
        o.min_version = "VersionTLS13".into();
        server_config(&o).unwrap();
        o.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()];
        assert!(server_config(&o).unwrap_err().to_string().starts_with("tlsCipherSuites"));
        o.cipher_suites = vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(), "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into()];
        let p = provider(&o.cipher_suites).unwrap();
        assert_eq!(p.cipher_suites.iter().filter(|s| s.version() != &rustls::version::TLS13).count(), 2);
    }
}
