//! `proxy-bench`: knode's kube-proxy (iptables and nftables modes) against
//! upstream kube-proxy 1.37 (nftables and iptables modes) on the same machine, one proxy
//! at a time. Run by `hack/bench-proxy.sh` INSIDE a private network namespace
//! with its own API server (it checks that it runs in the namespace named by
//! `--netns`: it flushes the ruleset between proxies). A benchmark, never a test.
//!
//! ```text
//! proxy-bench --netns NAME --kubeconfig PATH --services N --upstream PATH --ours PATH
//!             [--endpoints 10] [--restarts 3] [--changes 5]
//!             [--timeout 300] [--out DIR] [--only LABEL,...]
//! ```

mod objects;
mod probe;
mod report;
mod run;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use run::{ProxySpec, Settings};

struct Args {
    kubeconfig: PathBuf,
    netns: String,
    services: usize,
    endpoints: usize,
    restarts: usize,
    changes: usize,
    timeout_s: u64,
    upstream: PathBuf,
    ours: PathBuf,
    out: PathBuf,
    only: Option<Vec<String>>,
}

const USAGE: &str = "proxy-bench --netns NAME --kubeconfig PATH --services N --upstream PATH --ours PATH \
    [--endpoints 10] [--restarts 3] [--changes 5] [--timeout 300] [--out DIR] [--only LABEL,...]";

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        kubeconfig: PathBuf::new(),
        netns: String::new(),
        services: 0,
        endpoints: 10,
        restarts: 3,
        changes: 5,
        timeout_s: 300,
        upstream: PathBuf::new(),
        ours: PathBuf::new(),
        out: PathBuf::from("/tmp/knode-bench-proxy"),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kubeconfig" => a.kubeconfig = value()?.into(),
            "--netns" => a.netns = value()?,
            "--services" => a.services = value()?.parse().context("--services")?,
            "--endpoints" => a.endpoints = value()?.parse().context("--endpoints")?,
            "--restarts" => a.restarts = value()?.parse().context("--restarts")?,
            "--changes" => a.changes = value()?.parse().context("--changes")?,
            "--timeout" => a.timeout_s = value()?.parse().context("--timeout")?,
            "--upstream" => a.upstream = value()?.into(),
            "--ours" => a.ours = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--only" => a.only = Some(value()?.split(',').map(str::to_string).collect()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?} (usage: {USAGE})"),
        }
    }
    anyhow::ensure!(!a.netns.is_empty(), "--netns is required (the namespace this runs in)");
    anyhow::ensure!(a.services > 0 && a.restarts > 0, "--services and --restarts must be positive");
    anyhow::ensure!((1..=250).contains(&a.endpoints), "--endpoints must be 1..=250");
    anyhow::ensure!(a.changes <= 100, "--changes must be at most 100");
    for (flag, p) in [("--kubeconfig", &a.kubeconfig), ("--upstream", &a.upstream), ("--ours", &a.ours)] {
        anyhow::ensure!(p.is_file(), "{flag} {:?}: no such file", p.display());
    }
    Ok(a)
}

/// The ruleset gets flushed: only ever in the named namespace `--netns`,
/// which this process must be running in (`ip netns exec NAME`).
fn ensure_in_netns(name: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let named = format!("/run/netns/{name}");
    let ns = std::fs::metadata(&named).with_context(|| format!("--netns {name}: {named}"))?;
    let ours = std::fs::metadata("/proc/self/ns/net").context("reading /proc/self/ns/net")?;
    anyhow::ensure!(
        (ns.dev(), ns.ino()) == (ours.dev(), ours.ino()),
        "proxy-bench must run inside network namespace {name} (ip netns exec {name} ...; see hack/bench-proxy.sh)"
    );
    Ok(())
}

async fn client(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    ensure_in_netns(&a.netns)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let client = client(&a.kubeconfig).await?;
    objects::ensure_node(&client, run::NODE_NAME, Ipv4Addr::new(198, 18, 208, 1)).await?;
    let t = Instant::now();
    let created = objects::populate(&client, a.services, a.endpoints).await?;
    eprintln!("{} Services with EndpointSlices ({created} created in {:.1} s)", a.services, t.elapsed().as_secs_f64());

    let specs = [
        ProxySpec { label: "upstream nftables", binary: a.upstream.clone(), mode: "nftables" },
        ProxySpec { label: "upstream iptables", binary: a.upstream.clone(), mode: "iptables" },
        ProxySpec { label: "knode iptables", binary: a.ours.clone(), mode: "iptables" },
        ProxySpec { label: "knode nftables", binary: a.ours.clone(), mode: "nftables" },
    ];
    let settings = Settings {
        kubeconfig: &a.kubeconfig,
        out: &a.out,
        services: a.services,
        endpoints: a.endpoints,
        restarts: a.restarts,
        changes: a.changes,
        timeout: Duration::from_secs(a.timeout_s),
    };
    let mut rows = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        if a.only.as_ref().is_some_and(|o| !o.iter().any(|l| spec.label.contains(l.as_str()))) {
            continue;
        }
        // Upstream's iptables mode rewrites every rule on every sync: at 10k Services one
        // sync takes tens of minutes. It runs at larger sizes only when `--only` names it.
        if a.only.is_none() && spec.label == "upstream iptables" && a.services > 2000 {
            eprintln!("{} skipped at {} Services (name it in --only to run it)", spec.label, a.services);
            continue;
        }
        eprintln!("{} ({} Services):", spec.label, a.services);
        let m = run::measure(&client, spec, &settings, idx).await?;
        rows.push((spec.label, m));
    }
    probe::flush_rules()?;
    let table = report::table(a.services, a.endpoints, &rows);
    println!("{table}");
    let file = a.out.join(format!("results-{}svc.md", a.services));
    std::fs::write(&file, &table).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}
