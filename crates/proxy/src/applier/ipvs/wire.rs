//! The wire format of IPVS over generic netlink (`linux/ip_vs.h`,
//! `linux/genetlink.h`): attribute encoding, virtual and real servers to and
//! from attributes, request headers. Pure functions, tested without a kernel;
//! the socket is in `netlink.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub(super) use crate::applier::netlink::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, attr, attrs, get, nested};
use crate::ipvs::{RealServer, VirtualServer, VirtualServerKey};
use crate::service::Protocol;

pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const GENL_ID_CTRL: u16 = 0x10;
pub(super) const CTRL_CMD_GETFAMILY: u8 = 3;
pub(super) const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub(super) const CTRL_ATTR_FAMILY_NAME: u16 = 2;

pub(super) const IPVS_GENL_VERSION: u8 = 1;
pub(super) const CMD_NEW_SERVICE: u8 = 1;
pub(super) const CMD_SET_SERVICE: u8 = 2;
pub(super) const CMD_DEL_SERVICE: u8 = 3;
pub(super) const CMD_GET_SERVICE: u8 = 4;
pub(super) const CMD_NEW_DEST: u8 = 5;
pub(super) const CMD_SET_DEST: u8 = 6;
pub(super) const CMD_DEL_DEST: u8 = 7;
pub(super) const CMD_GET_DEST: u8 = 8;
pub(super) const CMD_SET_CONFIG: u8 = 12;
pub(super) const CMD_ATTR_SERVICE: u16 = 1;
pub(super) const CMD_ATTR_DEST: u16 = 2;
pub(super) const CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub(super) const CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub(super) const CMD_ATTR_TIMEOUT_UDP: u16 = 6;
pub(super) const SVC_AF: u16 = 1;
pub(super) const SVC_PROTOCOL: u16 = 2;
pub(super) const SVC_ADDR: u16 = 3;
pub(super) const SVC_PORT: u16 = 4;
pub(super) const SVC_FWMARK: u16 = 5;
pub(super) const SVC_SCHED_NAME: u16 = 6;
pub(super) const SVC_FLAGS: u16 = 7;
pub(super) const SVC_TIMEOUT: u16 = 8;
pub(super) const SVC_NETMASK: u16 = 9;
pub(super) const DEST_ADDR: u16 = 1;
pub(super) const DEST_PORT: u16 = 2;
pub(super) const DEST_FWD_METHOD: u16 = 3;
pub(super) const DEST_WEIGHT: u16 = 4;
pub(super) const DEST_U_THRESH: u16 = 5;
pub(super) const DEST_L_THRESH: u16 = 6;
pub(super) const DEST_ACTIVE_CONNS: u16 = 7;
pub(super) const DEST_INACT_CONNS: u16 = 8;
pub(super) const DEST_ADDR_FAMILY: u16 = 11;
/// `IP_VS_SVC_F_PERSISTENT`.
pub(super) const FLAG_PERSISTENT: u32 = 0x1;
/// `IP_VS_CONN_F_MASQ`: NAT forwarding.
pub(super) const FWD_MASQ: u32 = 0;

pub(super) fn u32_of(v: Option<&[u8]>) -> u32 {
    v.and_then(|b| b.get(..4)).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
}

pub(super) fn u16_of(v: Option<&[u8]>) -> u16 {
    v.and_then(|b| b.get(..2)).map(|b| u16::from_ne_bytes([b[0], b[1]])).unwrap_or(0)
}

pub(super) fn port_of(v: Option<&[u8]>) -> u16 {
    v.and_then(|b| b.get(..2)).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0)
}

pub(super) fn af(ip: &IpAddr) -> u16 {
    if ip.is_ipv4() { libc::AF_INET as u16 } else { libc::AF_INET6 as u16 }
}

/// `union nf_inet_addr`: 16 bytes, IPv4 in the first four.
pub(super) fn inet_addr(ip: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    out
}

pub(super) fn ip_of(family: u16, v: Option<&[u8]>) -> Option<IpAddr> {
    let b = v?;
    if family == libc::AF_INET as u16 {
        let o: [u8; 4] = b.get(..4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(o)))
    } else {
        let o: [u8; 16] = b.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(o)))
    }
}

/// The attributes identifying a virtual server (inside `IPVS_CMD_ATTR_SERVICE`).
pub(super) fn service_key_attrs(key: &VirtualServerKey) -> Vec<u8> {
    let mut b = Vec::new();
    attr(&mut b, SVC_AF, &af(&key.address).to_ne_bytes());
    attr(&mut b, SVC_PROTOCOL, &u16::from(key.protocol.number()).to_ne_bytes());
    attr(&mut b, SVC_ADDR, &inet_addr(&key.address));
    attr(&mut b, SVC_PORT, &key.port.to_be_bytes());
    b
}

/// The full `IPVS_CMD_ATTR_SERVICE` attribute of a new or changed virtual server.
pub fn encode_service(vs: &VirtualServer) -> Vec<u8> {
    let mut inner = service_key_attrs(&vs.key);
    let mut sched = vs.scheduler.as_bytes().to_vec();
    sched.push(0);
    attr(&mut inner, SVC_SCHED_NAME, &sched);
    let flags = if vs.persistent { FLAG_PERSISTENT } else { 0 };
    let mut fl = flags.to_ne_bytes().to_vec();
    fl.extend_from_slice(&u32::MAX.to_ne_bytes());
    attr(&mut inner, SVC_FLAGS, &fl);
    attr(&mut inner, SVC_TIMEOUT, &vs.timeout.to_ne_bytes());
    let netmask: u32 = if vs.key.address.is_ipv4() { u32::MAX } else { 128 };
    attr(&mut inner, SVC_NETMASK, &netmask.to_ne_bytes());
    let mut out = Vec::new();
    nested(&mut out, CMD_ATTR_SERVICE, &inner);
    out
}

/// A virtual server from the inside of an `IPVS_CMD_ATTR_SERVICE`;
/// `None` for firewall-mark services and unknown protocols.
pub fn decode_service(inner: &[u8]) -> Option<VirtualServer> {
    let a = attrs(inner);
    if u32_of(get(&a, SVC_FWMARK)) != 0 {
        return None;
    }
    let family = u16_of(get(&a, SVC_AF));
    let protocol = match i32::from(u16_of(get(&a, SVC_PROTOCOL))) {
        libc::IPPROTO_TCP => Protocol::Tcp,
        libc::IPPROTO_UDP => Protocol::Udp,
        libc::IPPROTO_SCTP => Protocol::Sctp,
        _ => return None,
    };
    let sched = get(&a, SVC_SCHED_NAME).unwrap_or_default();
    let sched = sched.split(|b| *b == 0).next().unwrap_or_default();
    let persistent = u32_of(get(&a, SVC_FLAGS)) & FLAG_PERSISTENT != 0;
    Some(VirtualServer {
        key: VirtualServerKey { address: ip_of(family, get(&a, SVC_ADDR))?, protocol, port: port_of(get(&a, SVC_PORT)) },
        scheduler: String::from_utf8_lossy(sched).into_owned(),
        persistent,
        timeout: if persistent { u32_of(get(&a, SVC_TIMEOUT)) } else { 0 },
    })
}

/// `IPVS_CMD_ATTR_SERVICE` (key only) + `IPVS_CMD_ATTR_DEST` for a real server.
pub fn encode_destination(key: &VirtualServerKey, addr: SocketAddr, weight: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    nested(&mut out, CMD_ATTR_SERVICE, &service_key_attrs(key));
    let mut d = Vec::new();
    attr(&mut d, DEST_ADDR, &inet_addr(&addr.ip()));
    attr(&mut d, DEST_PORT, &addr.port().to_be_bytes());
    if let Some(w) = weight {
        attr(&mut d, DEST_FWD_METHOD, &FWD_MASQ.to_ne_bytes());
        attr(&mut d, DEST_WEIGHT, &w.to_ne_bytes());
        attr(&mut d, DEST_U_THRESH, &0u32.to_ne_bytes());
        attr(&mut d, DEST_L_THRESH, &0u32.to_ne_bytes());
    }
    attr(&mut d, DEST_ADDR_FAMILY, &af(&addr.ip()).to_ne_bytes());
    nested(&mut out, CMD_ATTR_DEST, &d);
    out
}

/// A real server from the inside of an `IPVS_CMD_ATTR_DEST` (`family` is
/// the virtual server's, used when the kernel sends no address family).
pub fn decode_destination(inner: &[u8], family: u16) -> Option<RealServer> {
    let a = attrs(inner);
    let fam = match u16_of(get(&a, DEST_ADDR_FAMILY)) {
        0 => family,
        f => f,
    };
    Some(RealServer {
        address: SocketAddr::new(ip_of(fam, get(&a, DEST_ADDR))?, port_of(get(&a, DEST_PORT))),
        weight: u32_of(get(&a, DEST_WEIGHT)),
        active_conns: u32_of(get(&a, DEST_ACTIVE_CONNS)),
        inactive_conns: u32_of(get(&a, DEST_INACT_CONNS)),
    })
}

/// A netlink request: header, generic netlink header, attributes.
pub(super) fn message(family: u16, flags: u16, seq: u32, cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applier::netlink::NLA_F_NESTED;

    fn key(ip: &str, protocol: Protocol) -> VirtualServerKey {
        VirtualServerKey { address: ip.parse().unwrap(), protocol, port: 80 }
    }

    #[test]
    fn service_round_trips() {
        for (ip, proto) in [("10.0.0.1", Protocol::Tcp), ("fd00::1", Protocol::Sctp)] {
            let vs = VirtualServer { key: key(ip, proto), scheduler: "wrr".into(), persistent: true, timeout: 10800 };
            let enc = encode_service(&vs);
            let outer = attrs(&enc);
            assert_eq!(outer.len(), 1);
            assert_eq!(outer[0].0, CMD_ATTR_SERVICE);
            assert_eq!(u16::from_ne_bytes([enc[2], enc[3]]) & NLA_F_NESTED, NLA_F_NESTED);
            assert_eq!(decode_service(outer[0].1), Some(vs));
        }
    }

    #[test]
    fn service_wire_layout() {
        let vs = VirtualServer { key: key("10.0.0.1", Protocol::Tcp), scheduler: "rr".into(), persistent: false, timeout: 0 };
        let enc = encode_service(&vs);
        let inner = attrs(&enc)[0].1;
        let a = attrs(inner);
        assert_eq!(get(&a, SVC_PORT), Some(&[0u8, 80][..]), "port in network order");
        assert_eq!(&get(&a, SVC_ADDR).unwrap()[..4], &[10, 0, 0, 1]);
        assert_eq!(get(&a, SVC_ADDR).unwrap().len(), 16);
        assert_eq!(get(&a, SVC_SCHED_NAME), Some(&b"rr\0"[..]));
        assert_eq!(u16_of(get(&a, SVC_PROTOCOL)), 6);
        // Attribute lengths are padded to 4 bytes.
        assert_eq!(enc.len() % 4, 0);
    }

    #[test]
    fn destination_round_trips_and_firewall_marks_are_skipped() {
        let k = key("10.0.0.1", Protocol::Udp);
        let enc = encode_destination(&k, "10.1.0.7:53".parse().unwrap(), Some(1));
        let a = attrs(&enc);
        let d = decode_destination(get(&a, CMD_ATTR_DEST).unwrap(), libc::AF_INET as u16).unwrap();
        assert_eq!(d.address, "10.1.0.7:53".parse().unwrap());
        assert_eq!(d.weight, 1);
        let mut fw = Vec::new();
        attr(&mut fw, SVC_FWMARK, &7u32.to_ne_bytes());
        assert_eq!(decode_service(&fw), None);
        assert!(attrs(&[1, 0]).is_empty(), "truncated input is ignored");
    }
}
