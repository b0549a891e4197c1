//! The user a verified client certificate names (upstream `x509.CommonNameUserConversion`):
//! the subject's CN is the user, each O is a group. A certificate without a CN names nobody.
//!
//! Pure: walks just enough DER (Certificate → tbsCertificate → subject) to read those two
//! attributes. The TLS layer has already verified the chain; this never decides trust.

use kubelet_types::review::UserInfo;

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// One DER element: (tag, contents, rest of the input).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn children(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, body, rest) = element(contents)?;
        out.push((tag, body));
        contents = rest;
    }
    Some(out)
}

/// The subject's (CN values, O values) of a DER certificate; `None` if it does not parse.
pub fn subject_names(der: &[u8]) -> Option<(Vec<String>, Vec<String>)> {
    let (0x30, cert, _) = element(der)? else { return None };
    let (0x30, tbs, _) = element(cert)? else { return None };
    let fields = children(tbs)?;
    // [0] version is optional; then serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (tag, subject) = *fields.get(skip + 4)?;
    if tag != 0x30 {
        return None;
    }
    let (mut cns, mut orgs) = (Vec::new(), Vec::new());
    for (set_tag, rdn) in children(subject)? {
        if set_tag != 0x31 {
            return None;
        }
        for (seq_tag, atv) in children(rdn)? {
            let parts = children(atv)?;
            let (Some((0x06, oid)), Some((_, value)), 0x30) = (parts.first().copied(), parts.get(1).copied(), seq_tag) else { return None };
            let value = String::from_utf8_lossy(value).into_owned();
            if oid == OID_COMMON_NAME {
                cns.push(value);
            } else if oid == OID_ORGANIZATION {
                orgs.push(value);
            }
        }
    }
    Some((cns, orgs))
}

/// The user of a verified client certificate, `None` without a CN.
pub fn certificate_user(der: &[u8]) -> Option<UserInfo> {
    let (cns, orgs) = subject_names(der)?;
    let name = cns.into_iter().next().filter(|n| !n.is_empty())?;
    Some(UserInfo { name, groups: orgs, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert(cn: Option<&str>, orgs: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["x".into()]).unwrap();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        params.distinguished_name = dn;
        params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_is_the_user_and_organizations_the_groups() {
        let u = certificate_user(&cert(Some("system:node:n1"), &["system:nodes"])).unwrap();
        assert_eq!((u.name.as_str(), u.groups.clone()), ("system:node:n1", vec!["system:nodes".to_string()]));
        let u = certificate_user(&cert(Some("kube-apiserver"), &[])).unwrap();
        assert!(u.groups.is_empty());
        assert_eq!(certificate_user(&cert(None, &["system:masters"])), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(subject_names(&[]), None);
        assert_eq!(subject_names(&[0x30, 0x82, 0xff]), None);
        let good = cert(Some("a"), &[]);
        for cut in [1, 10, good.len() / 2] {
            assert_eq!(certificate_user(&good[..cut]), None, "cut at {cut}");
        }
    }
}
