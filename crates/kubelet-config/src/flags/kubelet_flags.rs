//! Settings that only come from the command line (upstream `KubeletFlags`):
//! the struct, its defaults, and the table of flags that set it, with their
//! help text and deprecation notes. Data only: `flags` parses and applies them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::flag_values::*;

/// Settings that only come from the command line (upstream `KubeletFlags`).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeletFlags {
    /// `--config`: the `KubeletConfiguration` file to load; unset, the kubelet starts from the
    /// flag-only defaults.
    pub config: Option<PathBuf>,
    /// `--config-dir`: directory of `*.conf` drop-in files merged over the configuration file.
    pub config_dir: Option<PathBuf>,
    /// `--kubeconfig`: how to reach the API server; unset, the kubelet runs standalone.
    pub kubeconfig: Option<PathBuf>,
    /// `--bootstrap-kubeconfig`: kubeconfig used to obtain a client certificate by CSR when
    /// `--kubeconfig` does not exist yet (TLS bootstrap).
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// `--cert-dir`: directory of the kubelet's client and serving certificates and keys; default
    /// `/var/lib/kubelet/pki`.
    pub cert_dir: PathBuf,
    /// `--hostname-override`: node name to use instead of the host's name; empty by default.
    pub hostname_override: String,
    /// `--node-ip`: the node's IP address; a comma-separated dual-stack pair is accepted, but only
    /// its first address is used. Empty, one is picked from the default-route interface.
    pub node_ip: String,
    /// `--root-dir`: the kubelet's state directory (pod directories, volumes, plugins); default
    /// `/var/lib/kubelet`.
    pub root_dir: PathBuf,
    /// `-v` / `--v` log verbosity.
    pub verbosity: u8,
    /// The node's `spec.providerID`, copied from the configuration's `providerID` (which
    /// `--provider-id` sets) once it is loaded.
    pub provider_id: String,
    /// `--node-labels`: labels the node registers with, key to value; repeated flags add up.
    pub node_labels: BTreeMap<String, String>,
    /// `--cloud-provider`: empty or `external` (a cloud controller manager initializes the node);
    /// knode does not act on it.
    pub cloud_provider: String,
    /// `--image-credential-provider-config`: the `CredentialProviderConfig` naming the image
    /// credential plugins to run; unset, none.
    pub image_credential_provider_config: Option<PathBuf>,
    /// `--image-credential-provider-bin-dir`: directory holding the credential plugins' binaries.
    pub image_credential_provider_bin_dir: Option<PathBuf>,
    /// `--lock-file`: file the kubelet would lock to keep a second instance out (upstream alpha);
    /// knode does not act on it.
    pub lock_file: Option<PathBuf>,
    /// `--exit-on-lock-contention`: exit when another process contends for `--lock-file`; default
    /// false; knode does not act on it.
    pub exit_on_lock_contention: bool,
    /// `--runtime-cgroups`: absolute cgroup of the container runtime, reported as the `runtime`
    /// system container in stats; empty by default.
    pub runtime_cgroups: String,
    /// `--experimental-mounter-path` (deprecated): a `mount` binary to use instead of the host's;
    /// knode does not act on it.
    pub experimental_mounter_path: String,
    /// `--experimental-allocatable-ignore-eviction` (deprecated): leave hard eviction thresholds
    /// out of node allocatable; default false; knode does not act on it.
    pub experimental_allocatable_ignore_eviction: bool,
    /// `--minimum-container-ttl-duration` (deprecated): minimum age of a dead container before
    /// garbage collection; default 0; knode does not act on it.
    pub minimum_gc_age: Duration,
    /// `--maximum-dead-containers` (deprecated): most dead containers kept on the node, -1
    /// (default) for no limit; knode does not act on it.
    pub max_container_count: i32,
    /// `--maximum-dead-containers-per-container` (deprecated): dead instances kept per container;
    /// default 1; knode does not act on it.
    pub max_per_pod_container_count: i32,
    /// Names of every flag given on the command line, without dashes.
    pub explicit: Vec<String>,
}

impl Default for KubeletFlags {
    fn default() -> Self {
        KubeletFlags {
            config: None,
            config_dir: None,
            kubeconfig: None,
            bootstrap_kubeconfig: None,
            cert_dir: PathBuf::from("/var/lib/kubelet/pki"),
            hostname_override: String::new(),
            node_ip: String::new(),
            root_dir: PathBuf::from("/var/lib/kubelet"),
            verbosity: 0,
            provider_id: String::new(),
            node_labels: BTreeMap::new(),
            cloud_provider: String::new(),
            image_credential_provider_config: None,
            image_credential_provider_bin_dir: None,
            lock_file: None,
            exit_on_lock_contention: false,
            runtime_cgroups: String::new(),
            experimental_mounter_path: String::new(),
            experimental_allocatable_ignore_eviction: false,
            minimum_gc_age: Duration::ZERO,
            max_container_count: -1,
            max_per_pod_container_count: 1,
            explicit: Vec::new(),
        }
    }
}

pub(super) type FlagSetter = fn(&mut KubeletFlags, &str) -> Result<(), String>;

/// Kubelet-only flags: `(name, is_bool, deprecation note, help, setter)`.
pub(super) const KUBELET_FLAGS: &[(&str, bool, Option<&str>, &str, FlagSetter)] = &[
    ("config", false, None, "The Kubelet will load its initial configuration from this file", |f, v| {
        f.config = Some(v.into());
        Ok(())
    }),
    ("config-dir", false, None, "Path to a directory of configuration drop-ins", |f, v| {
        f.config_dir = Some(v.into());
        Ok(())
    }),
    ("kubeconfig", false, None, "Path to a kubeconfig file, specifying how to connect to the API server", |f, v| {
        f.kubeconfig = Some(v.into());
        Ok(())
    }),
    ("bootstrap-kubeconfig", false, None, "Path to a kubeconfig file used to get a client certificate for kubelet", |f, v| {
        f.bootstrap_kubeconfig = Some(v.into());
        Ok(())
    }),
    ("cert-dir", false, None, "The directory where the TLS certs are located", |f, v| {
        f.cert_dir = v.into();
        Ok(())
    }),
    ("hostname-override", false, None, "If non-empty, will use this string as identification instead of the actual hostname", |f, v| {
        f.hostname_override = v.into();
        Ok(())
    }),
    ("node-ip", false, None, "IP address (or comma-separated dual-stack IP addresses) of the node", |f, v| {
        f.node_ip = v.into();
        Ok(())
    }),
    ("root-dir", false, None, "Directory path for managing kubelet files (volume mounts, etc)", |f, v| {
        f.root_dir = v.into();
        Ok(())
    }),
    ("node-labels", false, None, "Labels to add when registering the node in the cluster (key=value pairs separated by ',')", |f, v| {
        f.node_labels.extend(parse_map(v, '=')?);
        Ok(())
    }),
    ("cloud-provider", false, None, "The provider for cloud services ('' or 'external')", |f, v| {
        f.cloud_provider = v.into();
        Ok(())
    }),
    ("image-credential-provider-config", false, None, "Path to a credential provider plugin config file or directory", |f, v| {
        f.image_credential_provider_config = Some(v.into());
        Ok(())
    }),
    (
        "image-credential-provider-bin-dir",
        false,
        None,
        "The path to the directory where credential provider plugin binaries are located",
        |f, v| {
            f.image_credential_provider_bin_dir = Some(v.into());
            Ok(())
        },
    ),
    ("lock-file", false, None, "<Alpha> The path to file for kubelet to use as a lock file", |f, v| {
        f.lock_file = Some(v.into());
        Ok(())
    }),
    ("exit-on-lock-contention", true, None, "Whether kubelet should exit upon lock-file contention", |f, v| {
        f.exit_on_lock_contention = parse_bool(v)?;
        Ok(())
    }),
    ("runtime-cgroups", false, None, "Optional absolute name of cgroups to create and run the runtime in", |f, v| {
        f.runtime_cgroups = v.into();
        Ok(())
    }),
    (
        "experimental-mounter-path",
        false,
        Some("will be removed in 1.25 or later, in favor of using CSI"),
        "[Experimental] Path of mounter binary",
        |f, v| {
            f.experimental_mounter_path = v.into();
            Ok(())
        },
    ),
    (
        "experimental-allocatable-ignore-eviction",
        true,
        Some("will be removed in 1.25 or later"),
        "Ignore hard eviction thresholds when calculating Node Allocatable",
        |f, v| {
            f.experimental_allocatable_ignore_eviction = parse_bool(v)?;
            Ok(())
        },
    ),
    (
        "minimum-container-ttl-duration",
        false,
        Some("Use --eviction-hard or --eviction-soft instead. Will be removed in a future version."),
        "Minimum age for a finished container before it is garbage collected",
        |f, v| {
            f.minimum_gc_age = parse_duration(v)?;
            Ok(())
        },
    ),
    (
        "maximum-dead-containers",
        false,
        Some("Use --eviction-hard or --eviction-soft instead. Will be removed in a future version."),
        "Maximum number of old instances of containers to retain globally",
        |f, v| {
            f.max_container_count = parse_i32(v)?;
            Ok(())
        },
    ),
    (
        "maximum-dead-containers-per-container",
        false,
        Some("Use --eviction-hard or --eviction-soft instead. Will be removed in a future version."),
        "Maximum number of old instances to retain per container",
        |f, v| {
            f.max_per_pod_container_count = parse_i32(v)?;
            Ok(())
        },
    ),
    ("v", false, None, "number for the log level verbosity", |f, v| {
        f.verbosity = v.trim().parse().map_err(|_| "expected a verbosity level from 0 to 255".to_string())?;
        Ok(())
    }),
];
