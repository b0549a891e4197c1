//! Bootstrap tokens (`<id>.<secret>`, `[a-z0-9]{6}.[a-z0-9]{16}`), as kubeadm and the API
//! server's bootstrap authenticator read them.

use std::fmt;

/// A bootstrap token. Its `Debug` and `Display` show the id only: the secret never reaches a
/// log or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// The public token ID (6 characters), also the `jws-kubeconfig-<id>` key in `cluster-info`.
    pub id: String,
    secret: String,
}

/// The text is not a bootstrap token of the form `<id>.<secret>`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the bootstrap token must look like [a-z0-9]{{6}}.[a-z0-9]{{16}} (kubeadm token create prints one)")]
pub struct TokenFormatError;

impl BootstrapToken {
    /// Reads `<id>.<secret>` (lowercase letters and digits, 6 and 16 of them), as kubeadm does.
    pub fn parse(text: &str) -> Result<Self, TokenFormatError> {
        let (id, secret) = text.trim().split_once('.').ok_or(TokenFormatError)?;
        let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok(id, 6) || !ok(secret, 16) {
            return Err(TokenFormatError);
        }
        Ok(Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// The token's secret (16 characters): the HMAC key of `cluster-info`'s signature.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The bearer token, `<id>.<secret>`.
    pub fn bearer(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id)
    }
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<redacted>", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_like_kubeadm() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(t.id, "abcdef");
        assert_eq!(t.bearer(), "abcdef.0123456789abcdef");
        assert!(!format!("{t:?} {t}").contains("0123456789"));
        for bad in ["abcdef", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef", "abcdef.0123456789abcde!", ""] {
            assert_eq!(BootstrapToken::parse(bad), Err(TokenFormatError), "{bad}");
        }
    }
}
