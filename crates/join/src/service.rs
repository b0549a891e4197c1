//! Running the kubelet as a service: under systemd with the shipped units when systemd runs,
//! otherwise as a detached process started from the same units' command line (see
//! [`crate::unit`]), with its pid in `/run/knode/kubelet.pid` and its output in
//! `/var/log/knode/kubelet.log`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::files;
use crate::layout::{LOG_FILE, Layout, PID_FILE, UNIT_DIR};
use crate::unit;
use crate::units::{KUBEADM_DROP_IN, KUBELET_SERVICE};

/// Why the kubelet could not be installed, started or stopped as a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The units' command line could not be worked out.
    #[error(transparent)]
    Unit(#[from] unit::UnitError),
    /// A unit file could not be written.
    #[error(transparent)]
    Files(#[from] files::FilesError),
    /// A command (`systemctl ...`) or a process step failed.
    #[error("{what}: {reason}")]
    Run {
        /// What was run or done (`systemctl restart kubelet`).
        what: String,
        /// Its error or standard error output.
        reason: String,
    },
}

/// Whether systemd manages this machine (it creates `/run/systemd/system` at boot).
pub fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The unit paths under `layout`.
pub fn unit_paths(layout: &Layout) -> [PathBuf; 2] {
    let dir = layout.path(UNIT_DIR);
    [dir.join("kubelet.service"), dir.join("kubelet.service.d/10-kubeadm.conf")]
}

/// Writes the kubelet's unit and drop-in.
pub fn install_units(layout: &Layout) -> Result<[PathBuf; 2], ServiceError> {
    let paths = unit_paths(layout);
    files::write(&paths[0], KUBELET_SERVICE, 0o644)?;
    files::write(&paths[1], &layout.rewrite(KUBEADM_DROP_IN), 0o644)?;
    Ok(paths)
}

/// Runs `systemctl` with `args`; fails with its standard error output when it exits non-zero.
pub fn systemctl(args: &[&str]) -> Result<(), ServiceError> {
    let what = format!("systemctl {}", args.join(" "));
    let out = Command::new("systemctl").args(args).output().map_err(|e| ServiceError::Run { what: what.clone(), reason: e.to_string() })?;
    if !out.status.success() {
        return Err(ServiceError::Run { what, reason: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    Ok(())
}

/// The kubelet's command line from the units (paths under `layout`), run with `binary`.
pub fn kubelet_command(layout: &Layout, binary: &Path) -> Result<Vec<String>, ServiceError> {
    let drop_in = layout.rewrite(KUBEADM_DROP_IN);
    let mut argv = unit::exec_start(&[KUBELET_SERVICE, &drop_in], |p| std::fs::read_to_string(p).ok())?;
    argv[0] = binary.display().to_string();
    Ok(argv)
}

/// Starts the kubelet detached (its own session, surviving this process); returns its pid.
pub fn start_process(layout: &Layout, binary: &Path) -> Result<u32, ServiceError> {
    let argv = kubelet_command(layout, binary)?;
    let log_path = layout.path(LOG_FILE);
    let err = |what: &str, e: std::io::Error| ServiceError::Run { what: what.into(), reason: e.to_string() };
    std::fs::create_dir_all(log_path.parent().expect("has a parent")).map_err(|e| err("create the log directory", e))?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| err(&log_path.display().to_string(), e))?;
    let log2 = log.try_clone().map_err(|e| err("log file", e))?;
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| err(&format!("start {}", argv[0]), e))?;
    files::write(&layout.path(PID_FILE), &format!("{}\n", child.id()), 0o644)?;
    Ok(child.id())
}

/// The pid in the pid file, if that process still runs a kubelet.
pub fn running_pid(layout: &Layout) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(layout.path(PID_FILE)).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains("kubelet").then_some(pid)
}

/// Stops the kubelet started by [`start_process`]: SIGTERM, SIGKILL after `grace`. Returns
/// its pid if one ran.
pub fn stop_process(layout: &Layout, grace: Duration) -> Option<i32> {
    let pid = running_pid(layout);
    if let Some(pid) = pid {
        // SAFETY: kill has no memory preconditions; the pid was checked to be a kubelet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < grace && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = std::fs::remove_file(layout.path(PID_FILE));
    pid
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}
