//! The real [`IpvsHandle`]: IPVS over generic netlink (family `"IPVS"`),
//! spoken directly on a `NETLINK_GENERIC` socket — the encoding (`wire.rs`)
//! is small and no maintained crate covers IPVS. Resolving the family fails
//! with [`IpvsError::Unavailable`] on kernels without IPVS.

use std::net::SocketAddr;

use super::wire::*;
use super::{IpvsError, IpvsHandle, IpvsTimeouts};
use crate::applier::netlink::{NetlinkSocket, messages};
use crate::ipvs::{RealServer, VirtualServer, VirtualServerKey};

/// A generic netlink socket bound to the IPVS family.
#[derive(Debug)]
pub struct NetlinkIpvs {
    socket: NetlinkSocket,
    family: u16,
    seq: u32,
}

impl NetlinkIpvs {
    /// Opens the socket and resolves the `"IPVS"` family.
    pub fn new() -> Result<Self, IpvsError> {
        Self::open("IPVS")
    }

    /// A socket bound to the generic netlink family `family_name`;
    /// [`IpvsError::Unavailable`] when the kernel does not know it.
    fn open(family_name: &str) -> Result<Self, IpvsError> {
        let socket = NetlinkSocket::open(libc::NETLINK_GENERIC).map_err(IpvsError::Socket)?;
        let mut handle = NetlinkIpvs { socket, family: GENL_ID_CTRL, seq: 0 };
        let mut name = Vec::new();
        attr(&mut name, CTRL_ATTR_FAMILY_NAME, format!("{family_name}\0").as_bytes());
        let object = format!("generic netlink family {family_name}");
        let replies = match handle.request(CTRL_CMD_GETFAMILY, 0, 1, &name, "resolve", &object) {
            Err(IpvsError::Kernel { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                return Err(IpvsError::Unavailable);
            }
            other => other?,
        };
        let id = replies
            .iter()
            .find_map(|r| get(&attrs(r), CTRL_ATTR_FAMILY_ID).map(|v| u16_of(Some(v))))
            .ok_or_else(|| IpvsError::Malformed("no family id in the GETFAMILY reply".into()))?;
        handle.family = id;
        Ok(handle)
    }

    /// Sends one request; returns the attribute bytes of every reply
    /// (after the generic netlink header). Waits for the ACK or DONE.
    fn request(
        &mut self,
        cmd: u8,
        flags: u16,
        version: u8,
        attrs_buf: &[u8],
        op: &'static str,
        object: &str,
    ) -> Result<Vec<Vec<u8>>, IpvsError> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP != 0;
        let msg = message(self.family, flags | if dump { 0 } else { NLM_F_ACK }, self.seq, cmd, version, attrs_buf);
        self.socket.send(&msg).map_err(IpvsError::Socket)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.socket.recv(&mut buf, true).map_err(IpvsError::Socket)?;
            for m in messages(&buf[..n]).map_err(IpvsError::Malformed)? {
                if m.seq != self.seq {
                    continue;
                }
                let body = m.body;
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body.get(..4).map(|b| i32::from_ne_bytes(b.try_into().unwrap())).unwrap_or(0);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(IpvsError::Kernel { op, object: object.to_string(), source: std::io::Error::from_raw_os_error(-code) });
                    }
                    // A reply (a dump part, or GETFAMILY's answer before its ACK).
                    _ => out.push(body.get(4..).unwrap_or_default().to_vec()),
                }
            }
        }
    }

    fn ipvs(&mut self, cmd: u8, body: &[u8], op: &'static str, object: String) -> Result<Vec<Vec<u8>>, IpvsError> {
        self.request(cmd, 0, IPVS_GENL_VERSION, body, op, &object)
    }
}

impl IpvsHandle for NetlinkIpvs {
    fn virtual_servers(&mut self) -> Result<Vec<(VirtualServer, Vec<RealServer>)>, IpvsError> {
        let replies = self.request(CMD_GET_SERVICE, NLM_F_DUMP, IPVS_GENL_VERSION, &[], "list", "services")?;
        let mut out = Vec::new();
        for r in replies {
            let Some(inner) = get(&attrs(&r), CMD_ATTR_SERVICE) else {
                continue;
            };
            let Some(vs) = decode_service(inner) else {
                continue;
            };
            let mut body = Vec::new();
            nested(&mut body, CMD_ATTR_SERVICE, &service_key_attrs(&vs.key));
            let dests = self.request(CMD_GET_DEST, NLM_F_DUMP, IPVS_GENL_VERSION, &body, "list destinations of", &vs.key.to_string())?;
            let family = af(&vs.key.address);
            let real = dests.iter().filter_map(|d| get(&attrs(d), CMD_ATTR_DEST).and_then(|i| decode_destination(i, family))).collect();
            out.push((vs, real));
        }
        Ok(out)
    }

    fn add_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError> {
        self.ipvs(CMD_NEW_SERVICE, &encode_service(vs), "add", vs.key.to_string()).map(drop)
    }

    fn update_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError> {
        self.ipvs(CMD_SET_SERVICE, &encode_service(vs), "update", vs.key.to_string()).map(drop)
    }

    fn delete_virtual_server(&mut self, key: &VirtualServerKey) -> Result<(), IpvsError> {
        let mut body = Vec::new();
        nested(&mut body, CMD_ATTR_SERVICE, &service_key_attrs(key));
        self.ipvs(CMD_DEL_SERVICE, &body, "delete", key.to_string()).map(drop)
    }

    fn add_real_server(&mut self, key: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError> {
        let body = encode_destination(key, addr, Some(weight));
        self.ipvs(CMD_NEW_DEST, &body, "add", format!("{addr} to {key}")).map(drop)
    }

    fn update_real_server(&mut self, key: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError> {
        let body = encode_destination(key, addr, Some(weight));
        self.ipvs(CMD_SET_DEST, &body, "update", format!("{addr} of {key}")).map(drop)
    }

    fn delete_real_server(&mut self, key: &VirtualServerKey, addr: SocketAddr) -> Result<(), IpvsError> {
        let body = encode_destination(key, addr, None);
        self.ipvs(CMD_DEL_DEST, &body, "delete", format!("{addr} of {key}")).map(drop)
    }

    fn set_timeouts(&mut self, t: IpvsTimeouts) -> Result<(), IpvsError> {
        // Only the timeouts that are set: 0 keeps the kernel's value.
        let mut body = Vec::new();
        for (kind, secs) in [(CMD_ATTR_TIMEOUT_TCP, t.tcp), (CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin), (CMD_ATTR_TIMEOUT_UDP, t.udp)] {
            if secs != 0 {
                attr(&mut body, kind, &secs.to_ne_bytes());
            }
        }
        self.ipvs(CMD_SET_CONFIG, &body, "configure", "timeouts".into()).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_family_is_unavailable_not_an_io_error() {
        // This machine's kernel has no IPVS; where it has, the handle opens.
        match NetlinkIpvs::new() {
            Ok(_) => assert!(std::path::Path::new("/proc/net/ip_vs").exists()),
            Err(IpvsError::Unavailable) => {}
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn requests_and_acks_round_trip_with_the_kernel() {
        // The controller resolves itself: its fixed id proves the reply was parsed.
        let ctrl = NetlinkIpvs::open("nlctrl").expect("nlctrl always exists");
        assert_eq!(ctrl.family, GENL_ID_CTRL);
        match NetlinkIpvs::open("knode-nofam") {
            Err(IpvsError::Unavailable) => {}
            other => panic!("{other:?}"),
        }
    }
}
