//! `knode`: join this machine to a cluster in one command, diagnose a node, undo a join.
//! Parses the command line and hands over to `knode-join`; see docs/knode.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use knode_join::join::{Discovery, JoinOptions, ServiceMode};
use knode_join::layout::{BOOTSTRAP_KUBECONFIG, KUBELET_KUBECONFIG, Layout};
use knode_join::preflight::{Mode, Severity};
use knode_join::report::Report;
use knode_join::token::BootstrapToken;
use knode_join::{api, facts, join, preflight, reset};

const DEFAULT_CRI: &str = "unix:///run/containerd/containerd.sock";

fn common(cmd: Command) -> Command {
    cmd.arg(Arg::new("cri-socket").long("cri-socket").default_value(DEFAULT_CRI).help("the container runtime's CRI endpoint"))
        .arg(Arg::new("root").long("root").default_value("/").help("lay the node's files out under this directory (tests, images)"))
        .arg(Arg::new("node-name").long("node-name").help("the node's name (default: the host name)"))
        .arg(Arg::new("cni-conf-dir").long("cni-conf-dir").default_value("/etc/cni/net.d"))
        .arg(Arg::new("kubelet-binary").long("kubelet-binary").default_value("/usr/bin/kubelet"))
}

fn cli() -> Command {
    let service = Arg::new("service")
        .long("service")
        .value_parser(["auto", "systemd", "process"])
        .default_value("auto")
        .help("how the kubelet runs: systemd when it runs (auto), or a detached process");
    Command::new("knode")
        .about("Join this machine to a Kubernetes cluster, diagnose it, or undo the join")
        // A repeated flag: the last one wins, as with upstream's (pflag) tools.
        .args_override_self(true)
        .subcommand_required(true)
        .subcommand(
            common(
                Command::new("join")
                    .about("Join the cluster: discovery, preflight checks, the kubelet's files and service, wait until the node is Ready"),
            )
            .arg(Arg::new("api-server").help("the API server, host:port (kubeadm's form) or https://host:port"))
            .arg(Arg::new("server").long("server").help("the API server (as the positional argument)"))
            .arg(Arg::new("token").long("token").help("a bootstrap token, <id>.<secret>"))
            .arg(
                Arg::new("ca-cert-hash")
                    .long("ca-cert-hash")
                    .alias("discovery-token-ca-cert-hash")
                    .action(ArgAction::Append)
                    .help("sha256:<hex> of the cluster CA's public key (repeatable)"),
            )
            .arg(Arg::new("unsafe-skip-ca-verification").long("unsafe-skip-ca-verification").action(ArgAction::SetTrue))
            .arg(
                Arg::new("bootstrap-kubeconfig")
                    .long("bootstrap-kubeconfig")
                    .help("join with this bootstrap kubeconfig instead of a token"),
            )
            .arg(Arg::new("node-ip").long("node-ip"))
            .arg(
                Arg::new("ignore-preflight-errors")
                    .long("ignore-preflight-errors")
                    .value_delimiter(',')
                    .action(ArgAction::Append)
                    .help("checks whose errors are only warned about, or 'all'"),
            )
            .arg(Arg::new("timeout").long("timeout").default_value("4m").help("how long to wait for the node to be Ready"))
            .arg(service.clone()),
        )
        .subcommand(common(
            Command::new("doctor").about("Check this node; every problem with its fix. Exit status 1 when something is wrong"),
        ))
        .subcommand(
            common(
                Command::new("reset").about("Undo a join: stop the kubelet, remove its pods and every file the join and the kubelet wrote"),
            )
            .arg(Arg::new("keep-pods").long("keep-pods").action(ArgAction::SetTrue).help("leave the runtime's pods alone"))
            .arg(service),
        )
}

fn s(m: &ArgMatches, id: &str) -> String {
    m.get_one::<String>(id).cloned().unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_ascii_lowercase()).unwrap_or_else(|_| "localhost".into())
}

fn node_name(m: &ArgMatches) -> String {
    m.get_one::<String>("node-name").cloned().unwrap_or_else(hostname)
}

fn service_mode(m: &ArgMatches) -> ServiceMode {
    match s(m, "service").as_str() {
        "systemd" => ServiceMode::Systemd,
        "process" => ServiceMode::Process,
        _ => ServiceMode::Auto,
    }
}

/// `90`, `90s`, `4m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (n, unit) = text.find(|c: char| !c.is_ascii_digit()).map_or((text, "s"), |i| text.split_at(i));
    let bad = || format!("--timeout {text:?}: expected a number with s, m or h, at most 24h");
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    };
    secs.filter(|s| *s <= 24 * 3600).map(Duration::from_secs).ok_or_else(bad)
}

fn join_options(m: &ArgMatches) -> Result<JoinOptions, String> {
    let server = m.get_one::<String>("server").or(m.get_one::<String>("api-server")).cloned();
    let discovery = match (m.get_one::<String>("bootstrap-kubeconfig"), server, m.get_one::<String>("token")) {
        (Some(path), None, None) => Discovery::BootstrapKubeconfig(PathBuf::from(path)),
        (None, Some(server), Some(token)) => Discovery::Token {
            server,
            token: BootstrapToken::parse(token).map_err(|e| format!("--token: {e}"))?,
            pins: m.get_many::<String>("ca-cert-hash").map(|v| v.cloned().collect()).unwrap_or_default(),
            unsafe_skip_ca_verification: m.get_flag("unsafe-skip-ca-verification"),
        },
        (Some(_), _, _) => return Err("--bootstrap-kubeconfig goes without a server and --token".into()),
        _ => return Err("give the API server and --token (with --ca-cert-hash), or --bootstrap-kubeconfig".into()),
    };
    Ok(JoinOptions {
        discovery,
        node_name: node_name(m),
        node_ip: m.get_one::<String>("node-ip").cloned(),
        cri_socket: s(m, "cri-socket"),
        cni_conf_dir: PathBuf::from(s(m, "cni-conf-dir")),
        kubelet_binary: PathBuf::from(s(m, "kubelet-binary")),
        layout: Layout::new(s(m, "root")),
        ignore_preflight_errors: m.get_many::<String>("ignore-preflight-errors").map(|v| v.cloned().collect()).unwrap_or_default(),
        service: service_mode(m),
        ready_timeout: parse_duration(&s(m, "timeout"))?,
    })
}

async fn doctor(m: &ArgMatches) -> ExitCode {
    let layout = Layout::new(s(m, "root"));
    let settings = facts::KubeletSettings::of_node(&layout);
    let kubeconfig = [KUBELET_KUBECONFIG, BOOTSTRAP_KUBECONFIG].map(|p| layout.path(p)).into_iter().find(|p| p.exists());
    let client = match &kubeconfig {
        Some(path) => api::from_kubeconfig(path).await.map_err(|e| println!("cannot use {}: {e}", path.display())).ok(),
        None => {
            println!("no kubeconfig under {}: this node has not joined a cluster (knode join)", layout.path("/etc/kubernetes").display());
            None
        }
    };
    let cri = s(m, "cri-socket");
    let cni = PathBuf::from(s(m, "cni-conf-dir"));
    let binary = PathBuf::from(s(m, "kubelet-binary"));
    let name = node_name(m);
    let probe = facts::Probe {
        layout: &layout,
        settings: &settings,
        cri_socket: &cri,
        cni_conf_dir: &cni,
        kubelet_binary: Some(&binary),
        api: client.as_ref(),
        node_name: &name,
        check_node: false,
        check_client_cert: kubeconfig.is_some(),
        check_leftovers: false,
    };
    let findings = preflight::check(&facts::gather(&probe).await, Mode::Doctor, &[]);
    for f in &findings {
        println!("{f}");
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings.iter().filter(|f| f.severity == Severity::Warning).count();
    println!("{} checks: {errors} error(s), {warnings} warning(s)", findings.len());
    if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let matches = cli().get_matches();
    let mut report = Report::new(std::io::stdout());
    let result = match matches.subcommand() {
        Some(("join", m)) => match join_options(m) {
            Ok(opts) => join::join(&opts, &mut report).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        Some(("doctor", m)) => return doctor(m).await,
        Some(("reset", m)) => {
            let opts = reset::ResetOptions {
                layout: Layout::new(s(m, "root")),
                cri_socket: s(m, "cri-socket"),
                service: service_mode(m),
                remove_pods: !m.get_flag("keep-pods"),
            };
            reset::reset(&opts, &mut report).await.map_err(|e| e.to_string())
        }
        _ => unreachable!("subcommand_required"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("knode: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_kubeadm_join() {
        cli().debug_assert();
        let m = cli()
            .try_get_matches_from([
                "knode",
                "join",
                "198.18.255.1:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token-ca-cert-hash",
                "sha256:00",
                "--ignore-preflight-errors",
                "Swap,Port-10250",
                "--node-name",
                "n1",
            ])
            .unwrap();
        let opts = join_options(m.subcommand_matches("join").unwrap()).unwrap();
        assert!(
            matches!(&opts.discovery, Discovery::Token { server, pins, .. } if server == "198.18.255.1:6443" && pins == &["sha256:00"])
        );
        assert_eq!(opts.ignore_preflight_errors, ["Swap", "Port-10250"]);
        assert_eq!((opts.node_name.as_str(), opts.ready_timeout), ("n1", Duration::from_secs(240)));
        let m = cli().try_get_matches_from(["knode", "join", "--token", "abcdef.0123456789abcdef"]).unwrap();
        assert!(join_options(m.subcommand_matches("join").unwrap()).unwrap_err().contains("give the API server"));
        let m = cli().try_get_matches_from(["knode", "join", "x:1", "--token", "nope"]).unwrap();
        assert!(join_options(m.subcommand_matches("join").unwrap()).unwrap_err().starts_with("--token"));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("4d").is_err());
        assert!(parse_duration("99999999999999999h").is_err() && parse_duration("25h").is_err());
    }
}
