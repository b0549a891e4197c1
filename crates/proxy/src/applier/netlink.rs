//! What the netlink appliers share: attribute encoding and decoding
//! (`linux/netlink.h`), a raw netlink socket, splitting a buffer into
//! messages, and opening a socket inside a named network namespace. IPVS
//! (generic netlink) and nf_tables (`NETLINK_NETFILTER`) build on it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 1;
pub(crate) const NLM_F_ACK: u16 = 4;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;
/// `struct nlmsghdr`.
pub(crate) const HEADER_LEN: usize = 16;

/// Appends one attribute (padded to 4 bytes).
pub(crate) fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

pub(crate) fn nested(buf: &mut Vec<u8>, kind: u16, inner: &[u8]) {
    attr(buf, kind | NLA_F_NESTED, inner);
}

/// `(type without flags, payload)` of each attribute in `buf`.
pub(crate) fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let step = (len + 3) & !3;
        buf = &buf[step.min(buf.len())..];
    }
    out
}

pub(crate) fn get<'a>(list: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    list.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// Appends a message header for a body of `body_len` bytes.
pub(crate) fn header(buf: &mut Vec<u8>, body_len: usize, kind: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&((HEADER_LEN + body_len) as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
}

/// One message of a received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub body: &'a [u8],
}

impl Message<'_> {
    /// For `NLMSG_ERROR`: `(errno, seq of the message it answers)`; errno 0 is an ACK.
    pub fn error(&self) -> Option<(i32, u32)> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let code = i32::from_ne_bytes(self.body.get(..4)?.try_into().ok()?);
        let seq = self.body.get(12..16).map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes"))).unwrap_or(0);
        Some((-code, seq))
    }
}

/// Splits `buf` into messages; `Err` names a malformed length.
pub(crate) fn messages(mut buf: &[u8]) -> Result<Vec<Message<'_>>, String> {
    let mut out = Vec::new();
    while buf.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < HEADER_LEN || len > buf.len() {
            return Err(format!("netlink message of length {len}"));
        }
        out.push(Message {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes")),
            body: &buf[HEADER_LEN..len],
        });
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    Ok(out)
}

/// A raw netlink socket talking to the kernel.
#[derive(Debug)]
pub(crate) struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    /// `socket(AF_NETLINK, SOCK_RAW, protocol)` in this thread's network namespace.
    pub fn open(protocol: i32) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        Ok(NetlinkSocket { fd: unsafe { OwnedFd::from_raw_fd(raw) } })
    }

    /// Sends `msg` (one or more messages) to the kernel.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `msg` and `to` outlive the call; lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives into `buf`; with `wait: false`, `Ok(0)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if !wait && e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }

    /// Makes a waiting [`Self::recv`] fail with `WouldBlock` after `timeout`.
    pub fn set_receive_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval { tv_sec: timeout.as_secs() as libc::time_t, tv_usec: libc::suseconds_t::from(timeout.subsec_micros()) };
        // SAFETY: setsockopt with a pointer to a timeval that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Error answers carry only the refused message's header, not the whole message
    /// (`NETLINK_CAP_ACK`): a refused element group would otherwise be echoed back whole,
    /// and a few such echoes overflow the receive buffer.
    pub fn cap_acks(&self) -> io::Result<()> {
        const NETLINK_CAP_ACK: libc::c_int = 10;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to an int that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_NETLINK,
                NETLINK_CAP_ACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Raises the send buffer to at least `bytes` (`SO_SNDBUFFORCE`, root only).
    pub fn reserve_send_buffer(&self, bytes: usize) -> io::Result<()> {
        let size = i32::try_from(bytes).unwrap_or(i32::MAX);
        // SAFETY: setsockopt with a pointer to an int that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUFFORCE,
                (&size as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Entering a network namespace failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct NetnsError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

impl From<NetnsError> for io::Error {
    fn from(e: NetnsError) -> Self {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// Runs `f` on a thread inside the named network namespace (`None`: here);
/// a netlink socket opened there keeps talking to that namespace.
pub fn in_netns<T: Send + 'static>(netns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> Result<T, NetnsError> {
    let Some(ns) = netns else { return Ok(f()) };
    let path = format!("/run/netns/{ns}");
    let thread_path = path.clone();
    std::thread::spawn(move || {
        let path = thread_path;
        let file = std::fs::File::open(&path).map_err(|source| NetnsError { path: path.clone(), source })?;
        // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(NetnsError { path, source: io::Error::last_os_error() });
        }
        Ok(f())
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError { path, source: io::Error::other("the network namespace thread panicked") }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        attr(&mut b, 1, b"abc\0");
        nested(&mut b, 2, &[1, 2, 3]);
        let list = attrs(&b);
        assert_eq!(list.len(), 2);
        assert_eq!(get(&list, 1), Some(&b"abc\0"[..]));
        assert_eq!(get(&list, 2), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn splits_messages_and_reads_errors() {
        let mut buf = Vec::new();
        let mut body = (-2i32).to_ne_bytes().to_vec();
        header(&mut body, 0, 0x0a06, 0, 7);
        header(&mut buf, body.len(), NLMSG_ERROR, 0, 7);
        buf.extend_from_slice(&body);
        let msgs = messages(&buf).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].error(), Some((2, 7)));
        assert!(messages(&[40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
