//! A fake of the IPVS proxier's kernel boundary: [`FakeIpvs`] implements
//! both `IpvsHandle` (virtual and real servers) and `IpvsHost`
//! (`kube-ipvs0` addresses, `ipset save`/`restore`) over one shared,
//! inspectable state, so a test keeps a clone while the proxier owns a box.
//! It checks what the kernel checks (duplicates, unknown servers) and
//! records every call.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use proxy::applier::ipvs::{IpvsError, IpvsHandle, IpvsHost, IpvsTimeouts};
use proxy::ipvs::{RealServer, VirtualServer, VirtualServerKey};

/// What the fake kernel holds.
#[derive(Debug, Default, Clone)]
pub struct IpvsState {
    /// Every IPVS virtual server, with its real servers.
    pub virtual_servers: BTreeMap<VirtualServerKey, (VirtualServer, Vec<RealServer>)>,
    /// The addresses bound to the `kube-ipvs0` dummy device.
    pub bound: BTreeSet<IpAddr>,
    /// Whether `kube-ipvs0` has been created.
    pub dummy_device: bool,
    /// Entries per set name.
    pub ipsets: BTreeMap<String, BTreeSet<String>>,
    /// The connection timeouts last set; `None` while never set.
    pub timeouts: Option<IpvsTimeouts>,
    /// Every mutating call, e.g. `add-rs 10.0.0.1:80/TCP 10.1.0.1:8080 w1`.
    pub calls: Vec<String>,
    /// The next mutating call fails with this message.
    pub fail_next: Option<String>,
}

/// The shared fake; clone it to keep a view of what the proxier did.
#[derive(Debug, Default, Clone)]
pub struct FakeIpvs(pub Arc<Mutex<IpvsState>>);

fn kernel(op: &'static str, object: String, errno: i32) -> IpvsError {
    IpvsError::Kernel { op, object, source: std::io::Error::from_raw_os_error(errno) }
}

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;

impl FakeIpvs {
    /// Locks the shared state, to inspect or change it.
    pub fn state(&self) -> MutexGuard<'_, IpvsState> {
        self.0.lock().unwrap()
    }

    /// Sets the active connection count of a real server (to test draining).
    pub fn set_active_conns(&self, vs: &VirtualServerKey, rs: SocketAddr, active: u32) {
        let mut s = self.state();
        if let Some((_, real)) = s.virtual_servers.get_mut(vs)
            && let Some(r) = real.iter_mut().find(|r| r.address == rs)
        {
            r.active_conns = active;
        }
    }

    /// The real servers of `vs` as `ip:port` → weight.
    pub fn real_servers(&self, vs: &VirtualServerKey) -> BTreeMap<String, u32> {
        self.state().virtual_servers.get(vs).map(|(_, r)| r.iter().map(|r| (r.address.to_string(), r.weight)).collect()).unwrap_or_default()
    }

    fn call(&self, what: String) -> Result<MutexGuard<'_, IpvsState>, IpvsError> {
        let mut s = self.state();
        if let Some(message) = s.fail_next.take() {
            return Err(IpvsError::Malformed(message));
        }
        s.calls.push(what);
        Ok(s)
    }
}

impl IpvsHandle for FakeIpvs {
    fn virtual_servers(&mut self) -> Result<Vec<(VirtualServer, Vec<RealServer>)>, IpvsError> {
        Ok(self.state().virtual_servers.values().cloned().collect())
    }

    fn add_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError> {
        let mut s = self.call(format!("add-vs {}", vs.key))?;
        if s.virtual_servers.contains_key(&vs.key) {
            return Err(kernel("add", vs.key.to_string(), EEXIST));
        }
        s.virtual_servers.insert(vs.key, (vs.clone(), Vec::new()));
        Ok(())
    }

    fn update_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError> {
        let mut s = self.call(format!("update-vs {}", vs.key))?;
        match s.virtual_servers.get_mut(&vs.key) {
            Some(entry) => entry.0 = vs.clone(),
            None => return Err(kernel("update", vs.key.to_string(), ESRCH)),
        }
        Ok(())
    }

    fn delete_virtual_server(&mut self, key: &VirtualServerKey) -> Result<(), IpvsError> {
        let mut s = self.call(format!("delete-vs {key}"))?;
        s.virtual_servers.remove(key).map(drop).ok_or_else(|| kernel("delete", key.to_string(), ESRCH))
    }

    fn add_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError> {
        let mut s = self.call(format!("add-rs {vs} {addr} w{weight}"))?;
        let Some((_, real)) = s.virtual_servers.get_mut(vs) else {
            return Err(kernel("add", format!("{addr} to {vs}"), ESRCH));
        };
        if real.iter().any(|r| r.address == addr) {
            return Err(kernel("add", format!("{addr} to {vs}"), EEXIST));
        }
        real.push(RealServer { address: addr, weight, active_conns: 0, inactive_conns: 0 });
        Ok(())
    }

    fn update_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError> {
        let mut s = self.call(format!("update-rs {vs} {addr} w{weight}"))?;
        let r = s
            .virtual_servers
            .get_mut(vs)
            .and_then(|(_, real)| real.iter_mut().find(|r| r.address == addr))
            .ok_or_else(|| kernel("update", format!("{addr} of {vs}"), ENOENT))?;
        r.weight = weight;
        Ok(())
    }

    fn delete_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr) -> Result<(), IpvsError> {
        let mut s = self.call(format!("delete-rs {vs} {addr}"))?;
        let real = &mut s.virtual_servers.get_mut(vs).ok_or_else(|| kernel("delete", format!("{addr} of {vs}"), ESRCH))?.1;
        let before = real.len();
        real.retain(|r| r.address != addr);
        if real.len() == before {
            return Err(kernel("delete", format!("{addr} of {vs}"), ENOENT));
        }
        Ok(())
    }

    fn set_timeouts(&mut self, timeouts: IpvsTimeouts) -> Result<(), IpvsError> {
        self.call("set-timeouts".into())?.timeouts = Some(timeouts);
        Ok(())
    }
}

impl IpvsHost for FakeIpvs {
    fn ensure_dummy_device(&mut self) -> Result<(), IpvsError> {
        self.state().dummy_device = true;
        Ok(())
    }

    /// Fails without the device, as `ip addr show dev kube-ipvs0` does.
    fn bound_addresses(&mut self) -> Result<BTreeSet<IpAddr>, IpvsError> {
        let s = self.state();
        if !s.dummy_device {
            return Err(IpvsError::Malformed("Device \"kube-ipvs0\" does not exist.".into()));
        }
        Ok(s.bound.clone())
    }

    fn bind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError> {
        self.call(format!("bind {ip}"))?.bound.insert(ip);
        Ok(())
    }

    fn unbind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError> {
        self.call(format!("unbind {ip}"))?.bound.remove(&ip);
        Ok(())
    }

    fn ipset_save(&mut self) -> Result<String, IpvsError> {
        let mut out = String::new();
        for (name, entries) in &self.state().ipsets {
            out.push_str(&format!("create {name} hash:ip,port\n"));
            for e in entries {
                out.push_str(&format!("add {name} {e}\n"));
            }
        }
        Ok(out)
    }

    /// Understands `create`, `add` and `del` lines, as `ipset restore` does.
    fn ipset_restore(&mut self, input: &str) -> Result<(), IpvsError> {
        let mut s = self.call("ipset-restore".into())?;
        for line in input.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["create", name, ..] => {
                    s.ipsets.entry(name.to_string()).or_default();
                }
                ["add", name, entry, ..] => {
                    let Some(set) = s.ipsets.get_mut(*name) else {
                        return Err(IpvsError::Malformed(format!("ipset restore: no set {name}")));
                    };
                    set.insert(entry.to_string());
                }
                ["del", name, entry, ..] => {
                    if let Some(set) = s.ipsets.get_mut(*name) {
                        set.remove(*entry);
                    }
                }
                _ => {
                    return Err(IpvsError::Malformed(format!("ipset restore: bad line {line:?}")));
                }
            }
        }
        Ok(())
    }
}
