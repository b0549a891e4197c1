//! Chain names derived from service and endpoint names, as upstream derives
//! them: SHA-256, base32 (RFC 4648, `encoding/base32.StdEncoding`), truncated.
//! Shared by the nftables and iptables builders.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The first `n` characters (n ≤ 51) of base32(sha256(input)).
pub fn hash_prefix(input: &str, n: usize) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut out = String::with_capacity(n);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in digest.iter() {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
            if out.len() == n {
                return out;
            }
        }
        buffer &= (1 << bits) - 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_upstream_chain_hashes() {
        // From upstream's nftables and iptables proxier tests.
        assert_eq!(hash_prefix("ns1/svc1/tcp/p80", 8), "ULMVA6XW");
        assert_eq!(hash_prefix("ns1/svc1/tcp/p80__10.180.0.1/80", 8), "5OJB2KTY");
        assert_eq!(hash_prefix("ns1/svc1:p80tcp", 16), "XPGD46QRK7WJZT7O");
        assert_eq!(hash_prefix("ns1/svc1:p80tcp10.180.0.1:80", 16), "SXIVWICOYRO3J4NJ");
    }
}
