//! The kubelet's certificate files in `--cert-dir` (upstream's `certificate.FileStore`):
//! `<prefix>-<YYYY-MM-DD-HH-MM-SS>.pem` holds a certificate and its private key (mode 0600),
//! `<prefix>-current.pem` is a symlink to the one in use, replaced atomically on rotation.
//! Prefixes: `kubelet-client` and `kubelet-server`.

use std::io;
use std::path::{Path, PathBuf};

/// A certificate file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file (or the `-current.pem` symlink) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file holds no parsable certificate or no private key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        message: String,
    },
}

/// A certificate with its key, as PEM, and its validity (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate (chain), PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The certificate's `notBefore`, Unix seconds.
    pub not_before: i64,
    /// The certificate's `notAfter`, Unix seconds.
    pub not_after: i64,
}

impl CertPair {
    /// Whether the certificate is valid at `now` (Unix seconds).
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// Validity of the first certificate in `pem` (Unix seconds).
pub fn validity(pem: &[u8]) -> Result<(i64, i64), String> {
    let mut first = None;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label == "CERTIFICATE" {
            first = Some(block);
            break;
        }
    }
    let block = first.ok_or("no CERTIFICATE block")?;
    let cert = block.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// The PEM blocks of `pem` with one of `labels`, re-encoded.
fn blocks(pem: &[u8], labels: &[&str]) -> String {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .flatten()
        .filter(|b| labels.contains(&b.label.as_str()))
        .map(|b| {
            use base64::Engine;
            let body = base64::engine::general_purpose::STANDARD.encode(&b.contents);
            let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
            format!("-----BEGIN {0}-----\n{1}\n-----END {0}-----\n", b.label, lines.join("\n"))
        })
        .collect()
}

/// Certificate files with one prefix in one directory.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
    prefix: &'static str,
}

impl CertStore {
    /// The client certificate store (`kubelet-client-*.pem`).
    pub fn client(dir: &Path) -> Self {
        Self { dir: dir.into(), prefix: "kubelet-client" }
    }

    /// The serving certificate store (`kubelet-server-*.pem`).
    pub fn server(dir: &Path) -> Self {
        Self { dir: dir.into(), prefix: "kubelet-server" }
    }

    /// `<prefix>-current.pem`.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}-current.pem", self.prefix))
    }

    /// The certificate in use; `None` when there is none yet.
    pub fn current(&self) -> Result<Option<CertPair>, StoreError> {
        let path = self.current_path();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let invalid = |message: String| StoreError::Invalid { path: path.clone(), message };
        let (not_before, not_after) = validity(&data).map_err(invalid)?;
        let key_pem = blocks(&data, &["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]);
        if key_pem.is_empty() {
            return Err(invalid("no private key".into()));
        }
        Ok(Some(CertPair { cert_pem: blocks(&data, &["CERTIFICATE"]), key_pem, not_before, not_after }))
    }

    /// Writes a new pair as `<prefix>-<timestamp>.pem` (0600) and points `-current.pem` at it;
    /// returns the new file.
    pub fn update(&self, cert_pem: &str, key_pem: &str, timestamp: &str) -> Result<PathBuf, StoreError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
            move |source| StoreError::Io { path: path.into(), source }
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let file = self.dir.join(format!("{}-{timestamp}.pem", self.prefix));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&file).map_err(io(&file))?;
        f.write_all(cert_pem.as_bytes()).and_then(|()| f.write_all(key_pem.as_bytes())).and_then(|()| f.sync_all()).map_err(io(&file))?;
        let tmp = self.dir.join(format!(".{}-current.pem.tmp", self.prefix));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&file, &tmp).map_err(io(&tmp))?;
        let current = self.current_path();
        std::fs::rename(&tmp, &current).map_err(io(&current))?;
        Ok(file)
    }
}

/// `2006-01-02-15-04-05` (UTC) for a new certificate file.
pub fn timestamp_now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d-%H-%M-%S").to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed pair valid from 2000 to the start of `until`.
    pub(crate) fn self_signed(until: i32) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["n1".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn update_writes_the_pair_and_moves_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertStore::client(dir.path());
        assert_eq!(store.current().unwrap(), None);
        let (cert, key) = self_signed(2100);
        let file = store.update(&cert, &key, "2026-12-05-10-00-00").unwrap();
        assert_eq!(file, dir.path().join("kubelet-client-2026-12-05-10-00-00.pem"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let pair = store.current().unwrap().unwrap();
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        assert!(pair.valid_at(now) && !pair.valid_at(4_200_000_000) && !pair.valid_at(900_000_000));
        assert!(pair.key_pem.contains("BEGIN PRIVATE KEY") && pair.cert_pem.contains("BEGIN CERTIFICATE"));
        let (cert2, key2) = self_signed(2101);
        store.update(&cert2, &key2, "2026-12-05-11-00-00").unwrap();
        assert_eq!(std::fs::read_link(store.current_path()).unwrap(), dir.path().join("kubelet-client-2026-12-05-11-00-00.pem"));
        std::fs::write(dir.path().join("kubelet-client-2026-12-05-11-00-00.pem"), "garbage").unwrap();
        assert!(store.current().unwrap_err().to_string().contains("kubelet-client-current.pem"));
    }
}
