//! Which sysctls a pod may set (upstream `pkg/kubelet/sysctl` and the namespace table of
//! `component-helpers/node/util/sysctl`).
//!
//! Pure: the safe sysctls a kernel version namespaces, the allowlist built from them and
//! KubeletConfiguration `allowedUnsafeSysctls` (names and `prefix*` patterns, each of a kernel
//! namespace the pod can own), and the admission verdict for a pod's `securityContext.sysctls`.
//! Reading the kernel version and rejecting the pod belong to the caller ([`crate::admission`]).

use std::fmt;

use k8s_openapi::api::core::v1::Pod;

/// Reason of a pod rejected for its sysctls.
pub const FORBIDDEN_REASON: &str = "SysctlForbidden";

/// Maximum length of a sysctl name or pattern.
const MAX_LENGTH: usize = 253;
/// The pattern syntax, quoted in errors as upstream's regular expression.
const PATTERN_REGEX: &str = r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]";

/// The kernel namespace a sysctl belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysctlNamespace {
    /// The IPC namespace (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`).
    Ipc,
    /// The network namespace (`net.*`).
    Net,
    /// The UTS namespace (`kernel.domainname`).
    Uts,
    /// The user namespace (`user.*`).
    User,
}

impl fmt::Display for SysctlNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ipc => "IPC",
            Self::Net => "Net",
            Self::Uts => "UTS",
            Self::User => "User",
        })
    }
}

/// Sysctls known to be namespaced, by exact name (`kernel.shm` and `kernel.msg` are there for
/// the `kernel.shm*` and `kernel.msg*` patterns).
const NAMESPACED: [(&str, SysctlNamespace); 11] = [
    ("kernel.domainname", SysctlNamespace::Uts),
    ("kernel.sem", SysctlNamespace::Ipc),
    ("kernel.shmall", SysctlNamespace::Ipc),
    ("kernel.shmmax", SysctlNamespace::Ipc),
    ("kernel.shmmni", SysctlNamespace::Ipc),
    ("kernel.shm_rmid_forced", SysctlNamespace::Ipc),
    ("kernel.shm", SysctlNamespace::Ipc),
    ("kernel.msgmax", SysctlNamespace::Ipc),
    ("kernel.msgmnb", SysctlNamespace::Ipc),
    ("kernel.msgmni", SysctlNamespace::Ipc),
    ("kernel.msg", SysctlNamespace::Ipc),
];

/// Sysctl trees known to be namespaced, by prefix (followed by a dot).
const NAMESPACED_PREFIXES: [(&str, SysctlNamespace); 3] =
    [("net", SysctlNamespace::Net), ("fs.mqueue", SysctlNamespace::Ipc), ("user", SysctlNamespace::User)];

/// Sysctls safe for every pod, with the kernel version (major, minor) that namespaces them.
const SAFE: [(&str, Option<(u32, u32)>); 14] = [
    ("kernel.shm_rmid_forced", None),
    ("net.ipv4.ip_local_port_range", None),
    ("net.ipv4.tcp_syncookies", None),
    ("net.ipv4.ping_group_range", None),
    ("net.ipv4.ip_unprivileged_port_start", None),
    ("net.ipv4.ip_local_reserved_ports", Some((3, 16))),
    ("net.ipv4.tcp_keepalive_time", Some((4, 5))),
    ("net.ipv4.tcp_fin_timeout", Some((4, 6))),
    ("net.ipv4.tcp_keepalive_intvl", Some((4, 5))),
    ("net.ipv4.tcp_keepalive_probes", Some((4, 5))),
    ("net.ipv4.tcp_rmem", Some((4, 15))),
    ("net.ipv4.tcp_wmem", Some((4, 15))),
    ("net.ipv4.tcp_slow_start_after_idle", Some((4, 15))),
    ("net.ipv4.tcp_notsent_lowat", Some((4, 6))),
];

/// Why the allowlist cannot be built (the kubelet refuses to start).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    /// An `allowedUnsafeSysctls` entry that is too long or not a valid name or `prefix*` pattern.
    #[error("sysctl {0:?} must have at most {MAX_LENGTH} characters and match regex {PATTERN_REGEX}")]
    InvalidPattern(String),
    /// An `allowedUnsafeSysctls` entry outside every kernel namespace a pod can own.
    #[error("the sysctls {0:?} are not known to be namespaced")]
    NotNamespaced(String),
}

/// Why a pod may not set a sysctl ([`SysctlAllowlist::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForbiddenSysctl {
    /// The sysctl is neither safe nor in `allowedUnsafeSysctls` (its normalized name).
    #[error("{0:?} not allowlisted")]
    NotAllowlisted(String),
    /// The sysctl belongs to a kernel namespace the pod shares with the host.
    #[error("{name:?} not allowed with host {namespace} enabled")]
    HostNamespace {
        /// The sysctl's normalized name.
        name: String,
        /// The namespace the pod shares with the host (`hostNetwork`, `hostIPC`, `hostUsers`).
        namespace: SysctlNamespace,
    },
}

/// A pod refused for its sysctls ([`SysctlAllowlist::admit`]): the message of its
/// `SysctlForbidden` rejection, for the first forbidden one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("forbidden sysctl: {0}")]
pub struct PodSysctlError(#[from] pub ForbiddenSysctl);

/// `net/ipv4/conf/eth0.100/rp_filter` → `net.ipv4.conf.eth0/100.rp_filter`: a name whose first
/// separator is a slash has its dots and slashes swapped (sysctl.d(5)); others are unchanged.
pub fn normalize_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// The kernel namespace of a (normalized) sysctl name or pattern prefix, if it is namespaced.
pub fn namespace_of(name: &str) -> Option<SysctlNamespace> {
    NAMESPACED.iter().find(|(n, _)| *n == name).map(|(_, ns)| *ns).or_else(|| {
        NAMESPACED_PREFIXES.iter().find(|(p, _)| name.strip_prefix(p).is_some_and(|rest| rest.starts_with('.'))).map(|(_, ns)| *ns)
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Upstream's sysctl pattern syntax: lowercase segments separated by `.` or `/`, the last one
/// optionally ending in `*`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    if pattern.is_empty() || pattern.len() > MAX_LENGTH {
        return false;
    }
    let segments: Vec<&str> = pattern.split(['.', '/']).collect();
    let (last, rest) = segments.split_last().expect("split yields a segment");
    let inner_ok = |s: &str| s.len() == 1 || s[1..s.len() - 1].chars().all(|c| is_name_char(c) || c == '-' || c == '_');
    let full_segment = |s: &str| s.starts_with(is_name_char) && s.ends_with(is_name_char) && inner_ok(s);
    let last_ok = match last.len() {
        0 => false,
        1 => last.starts_with(|c| is_name_char(c) || c == '*'),
        _ => last.starts_with(is_name_char) && last.ends_with(|c| is_name_char(c) || c == '*') && inner_ok(last),
    };
    last_ok && rest.iter().all(|s| full_segment(s))
}

/// A kernel release's (major, minor), e.g. `6.1.0-18-amd64` → (6, 1); it needs at least two
/// numeric components, as upstream's generic version parser.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let release = release.trim_start();
    let mut rest = release.strip_prefix('v').unwrap_or(release);
    let mut components = Vec::new();
    loop {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        components.push(rest[..digits].parse::<u32>().ok()?);
        rest = &rest[digits..];
        match rest.strip_prefix('.') {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
            _ => break,
        }
    }
    match components[..] {
        [major, minor, ..] => Some((major, minor)),
        _ => None,
    }
}

/// The safe sysctls the kernel namespaces; with an unknown kernel, those every kernel does.
pub fn safe_sysctls(kernel: Option<(u32, u32)>) -> Vec<&'static str> {
    SAFE.iter().filter(|(_, min)| min.is_none_or(|min| kernel.is_some_and(|k| k >= min))).map(|(name, _)| *name).collect()
}

/// The sysctls pods may set: names and prefixes with their kernel namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysctlAllowlist {
    names: Vec<(String, SysctlNamespace)>,
    prefixes: Vec<(String, SysctlNamespace)>,
}

impl Default for SysctlAllowlist {
    /// The safe sysctls every kernel namespaces, nothing unsafe.
    fn default() -> Self {
        let names =
            safe_sysctls(None).into_iter().map(|n| (n.to_string(), namespace_of(n).expect("safe sysctls are namespaced"))).collect();
        Self { names, prefixes: Vec::new() }
    }
}

impl SysctlAllowlist {
    /// An allowlist of sysctl names and `prefix*` patterns, each of which must be namespaced.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<Self, SysctlError> {
        let mut list = Self { names: Vec::new(), prefixes: Vec::new() };
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if !is_valid_pattern(pattern) {
                return Err(SysctlError::InvalidPattern(pattern.into()));
            }
            let normalized = normalize_name(pattern);
            let (name, prefixed) = match normalized.find('*') {
                Some(i) => (normalized[..i].to_string(), true),
                None => (normalized, false),
            };
            let ns = namespace_of(&name).ok_or_else(|| SysctlError::NotNamespaced(name.clone()))?;
            if prefixed { list.prefixes.push((name, ns)) } else { list.names.push((name, ns)) }
        }
        Ok(list)
    }

    /// The node's allowlist: the safe sysctls of its kernel (`release`, as in
    /// `/proc/sys/kernel/osrelease`) and the `allowedUnsafeSysctls`.
    pub fn for_node<S: AsRef<str>>(release: Option<&str>, allowed_unsafe: &[S]) -> Result<Self, SysctlError> {
        let kernel = release.and_then(parse_kernel_version);
        let safe = safe_sysctls(kernel).into_iter().map(str::to_string);
        Self::new(safe.chain(allowed_unsafe.iter().map(|s| s.as_ref().to_string())))
    }

    /// Whether a pod may set `name`; a sysctl of a namespace the pod shares with the host
    /// (`hostNetwork`, `hostIPC`, `hostUsers`) is refused even when allowlisted.
    pub fn validate(&self, name: &str, host_net: bool, host_ipc: bool, host_users: bool) -> Result<(), ForbiddenSysctl> {
        let name = normalize_name(name);
        let found =
            self.names.iter().find(|(n, _)| *n == name).or_else(|| self.prefixes.iter().find(|(p, _)| name.starts_with(p.as_str())));
        let Some((_, ns)) = found else { return Err(ForbiddenSysctl::NotAllowlisted(name)) };
        let shared = match ns {
            SysctlNamespace::Ipc => host_ipc,
            SysctlNamespace::Net => host_net,
            SysctlNamespace::User => host_users,
            SysctlNamespace::Uts => false,
        };
        if shared { Err(ForbiddenSysctl::HostNamespace { name, namespace: *ns }) } else { Ok(()) }
    }

    /// The sysctl admission of a pod: `Err` with the message of the first forbidden sysctl.
    pub fn admit(&self, pod: &Pod) -> Result<(), PodSysctlError> {
        let Some(spec) = pod.spec.as_ref() else { return Ok(()) };
        let sysctls = spec.security_context.as_ref().and_then(|sc| sc.sysctls.as_ref());
        // hostUsers defaults to true: an unset field shares the host's user namespace.
        let host_users = spec.host_users.unwrap_or(true);
        for s in sysctls.into_iter().flatten() {
            let (host_net, host_ipc) = (spec.host_network.unwrap_or(false), spec.host_ipc.unwrap_or(false));
            self.validate(&s.name, host_net, host_ipc, host_users)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "sysctl_tests.rs"]
mod tests;
