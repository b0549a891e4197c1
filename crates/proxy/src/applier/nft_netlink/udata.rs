//! The user data `nft` attaches to an endpoint map (`NFTA_SET_USERDATA`):
//! type-length-value records, values in host byte order, that let `nft`
//! print and check the map as `typeof numgen random mod 1 : ip daddr . tcp
//! dport` instead of a bare `integer` key. Without them `nft` would refuse
//! the Service rules written against the map in a later full sync. The
//! layout is what nft 1.0.6 sends for that declaration (read with
//! `nft --debug=mnl`); a test compares the kernel's listing of a map made
//! here with one made by `nft`. Pure.

use crate::net::IpFamily;
use crate::service::Protocol;

// Set-level records.
const KEY_BYTEORDER: u8 = 0;
const DATA_BYTEORDER: u8 = 1;
const KEY_TYPEOF: u8 = 3;
const DATA_TYPEOF: u8 = 4;
const DATA_INTERVAL: u8 = 6;
const COMMENT: u8 = 7;
// Inside a typeof record: the expression's id and its own records.
const TYPEOF_EXPR: u8 = 0;
const TYPEOF_DATA: u8 = 1;
const EXPR_PAYLOAD: u32 = 7;
const EXPR_CONCAT: u32 = 13;
const EXPR_NUMGEN: u32 = 23;
const BYTEORDER_HOST: u32 = 1;
const NUMGEN_RANDOM: u32 = 1;
// nft's protocol descriptions and header fields.
const DESC_IP: u32 = 12;
const DESC_IP6: u32 = 13;
const IP_DADDR: u32 = 12;
const IP6_DADDR: u32 = 9;
const DESC_UDP: u32 = 6;
const DESC_TCP: u32 = 8;
const DESC_SCTP: u32 = 10;
const TH_DPORT: u32 = 2;

fn record(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let len = u8::try_from(value.len()).expect("user data records are short");
    out.push(kind);
    out.push(len);
    out.extend_from_slice(value);
}

fn u32_record(out: &mut Vec<u8>, kind: u8, value: u32) {
    record(out, kind, &value.to_ne_bytes());
}

/// `TYPEOF_EXPR id` + `TYPEOF_DATA { fields... }`.
fn expression(id: u32, fields: &[(u8, u32)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (kind, value) in fields {
        u32_record(&mut data, *kind, *value);
    }
    let mut out = Vec::new();
    u32_record(&mut out, TYPEOF_EXPR, id);
    record(&mut out, TYPEOF_DATA, &data);
    out
}

/// A payload field: (protocol description, field).
fn payload(desc: u32, field: u32) -> Vec<u8> {
    expression(EXPR_PAYLOAD, &[(0, desc), (1, field)])
}

/// The user data of an endpoint map of `family` and `protocol`, with `comment`.
pub fn endpoint_map(family: IpFamily, protocol: Protocol, comment: &str) -> Vec<u8> {
    let (ip_desc, daddr) = match family {
        IpFamily::V4 => (DESC_IP, IP_DADDR),
        IpFamily::V6 => (DESC_IP6, IP6_DADDR),
    };
    let l4_desc = match protocol {
        Protocol::Tcp => DESC_TCP,
        Protocol::Udp => DESC_UDP,
        Protocol::Sctp => DESC_SCTP,
    };
    // numgen: mode, modulus, offset.
    let key = expression(EXPR_NUMGEN, &[(0, NUMGEN_RANDOM), (1, 1), (2, 0)]);
    let mut parts = Vec::new();
    record(&mut parts, 0, &payload(ip_desc, daddr));
    record(&mut parts, 1, &payload(l4_desc, TH_DPORT));
    let mut data = Vec::new();
    u32_record(&mut data, TYPEOF_EXPR, EXPR_CONCAT);
    record(&mut data, TYPEOF_DATA, &parts);

    let mut out = Vec::new();
    u32_record(&mut out, KEY_BYTEORDER, BYTEORDER_HOST);
    u32_record(&mut out, DATA_BYTEORDER, 0);
    record(&mut out, KEY_TYPEOF, &key);
    record(&mut out, DATA_TYPEOF, &data);
    u32_record(&mut out, DATA_INTERVAL, 0);
    let mut text = comment.as_bytes().to_vec();
    text.push(0);
    record(&mut out, COMMENT, &text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What nft 1.0.6 sent for `add map ip t m { typeof numgen random mod 1
    /// : ip daddr . tcp dport ; comment "endpoints of load-balancing chains" ; }`.
    const NFT_IP_TCP: &str = "000401000000010400000000031a00041700000001120004010000000104010000000204000000000434\
        00040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c000408000000\
        0104020000000604000000000723656e64706f696e7473206f66206c6f61642d62616c616e63696e6720636861696e7300";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn matches_what_nft_sends() {
        let ours = endpoint_map(IpFamily::V4, Protocol::Tcp, "endpoints of load-balancing chains");
        let nft: String = NFT_IP_TCP.split_whitespace().collect();
        assert_eq!(hex(&ours), nft);
        // IPv6 daddr and UDP differ only in their descriptions and fields.
        let v6 = hex(&endpoint_map(IpFamily::V6, Protocol::Udp, "c"));
        assert!(v6.contains("00040d0000000104090000000114000407000000010c000406000000"), "{v6}");
    }
}
