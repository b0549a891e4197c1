//! `cluster-bench`: our kubelet in cluster mode against upstream kubelet 1.37, both as node
//! `knode-node` on the shared control plane and containerd. `hack/bench-cluster.sh` drives it,
//! one locked run at a time. A benchmark, never a test (see `docs/benchmarks.md`).
//!
//! ```text
//! cluster-bench run --kubelet ours|upstream --round N [--pods N] [--probes] [--objects] [--idle-wait S] [--settle S] [--steady S] [--out DIR]
//! cluster-bench report [--out DIR]
//! cluster-bench eviction --kubelet ours|upstream --round N [--out DIR]
//! cluster-bench eviction-report [--out DIR]
//! cluster-bench logs --kubelet ours|upstream --round N [--out DIR]
//! cluster-bench logs-report [--out DIR]
//! cluster-bench pulls --kubelet ours|upstream --round N --serialize true|false --images FILE [--out DIR]
//! cluster-bench pulls-report [--out DIR]
//! ```

mod audit;
#[path = "../bench_pods.rs"]
mod bench_pods;
mod endpoints;
mod eviction;
mod kubelets;
mod logs;
mod node;
mod pods;
#[path = "../proc_stats.rs"]
mod proc_stats;
mod pulls;
mod report;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

const USAGE: &str = "cluster-bench run --kubelet ours|upstream --round N [--pods N] [--probes] [--objects] [--idle-wait S] [--settle S] [--steady S] [--out DIR]\n\
                     cluster-bench report [--out DIR]\n\
                     cluster-bench eviction --kubelet ours|upstream --round N [--out DIR]\n\
                     cluster-bench eviction-report [--out DIR]\n\
                     cluster-bench logs --kubelet ours|upstream --round N [--out DIR]\n\
                     cluster-bench logs-report [--out DIR]\n\
                     cluster-bench pulls --kubelet ours|upstream --round N --serialize true|false --images FILE [--out DIR]\n\
                     cluster-bench pulls-report [--out DIR]";

struct Args {
    command: String,
    kubelet: Option<kubelets::Which>,
    round: usize,
    settings: run::Settings,
    /// `pulls`: `serializeImagePulls`, and the file listing the images (one per line).
    serialize: Option<bool>,
    images: Option<PathBuf>,
    out: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it.next().context(USAGE)?;
    let mut a = Args {
        command,
        kubelet: None,
        round: 1,
        settings: run::Settings {
            pods: 100,
            image: std::env::var("KNODE_BUSYBOX_IMAGE").unwrap_or_else(|_| "localhost/knode/busybox:1.35".into()),
            probes: false,
            objects: false,
            idle_wait: Duration::from_secs(20),
            settle: Duration::from_secs(10),
            steady: Duration::from_secs(120),
        },
        serialize: None,
        images: None,
        out: PathBuf::from("/tmp/knode-cluster-bench"),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kubelet" => a.kubelet = Some(kubelets::Which::parse(&value()?)?),
            "--round" => a.round = value()?.parse().context("--round")?,
            "--pods" => a.settings.pods = value()?.parse().context("--pods")?,
            "--idle-wait" => a.settings.idle_wait = Duration::from_secs(value()?.parse().context("--idle-wait")?),
            "--settle" => a.settings.settle = Duration::from_secs(value()?.parse().context("--settle")?),
            "--steady" => a.settings.steady = Duration::from_secs(value()?.parse().context("--steady")?),
            "--out" => a.out = value()?.into(),
            "--serialize" => a.serialize = Some(value()?.parse().context("--serialize takes true or false")?),
            "--images" => a.images = Some(value()?.into()),
            "--probes" => a.settings.probes = true,
            "--objects" => a.settings.objects = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    anyhow::ensure!(a.settings.pods > 0 && a.settings.pods <= 110, "--pods must be 1..=110 (maxPods)");
    anyhow::ensure!(a.settings.steady.as_secs() >= 10, "--steady must be at least 10 seconds");
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match args.command.as_str() {
        "run" => runtime.block_on(run_one(args)),
        "report" => report(&args.out),
        "eviction" => runtime.block_on(eviction_one(args)),
        "eviction-report" => eviction_report(&args.out),
        "logs" => runtime.block_on(logs_one(args)),
        "logs-report" => {
            let results: Vec<logs::LogsResult> = load_results(&args.out, "logs-")?;
            print!("{}", logs::report(&results));
            Ok(())
        }
        "pulls" => runtime.block_on(pulls_one(args)),
        "pulls-report" => {
            let mut results: Vec<pulls::PullsResult> = load_results(&args.out, "pulls-")?;
            results.sort_by(|a, b| (a.round, !a.serialized, &a.kubelet).cmp(&(b.round, !b.serialized, &b.kubelet)));
            print!("{}", pulls::report(&results));
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn paths(out: &std::path::Path) -> kubelets::Paths {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let repo = std::env::var("KNODE_REPO_ROOT").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let sock = std::env::var("KNODE_CONTAINERD_SOCK").unwrap_or_else(|_| "/run/knode/containerd/containerd.sock".into());
    let k8s_bin = std::env::var("KNODE_K8S_BIN_DIR").unwrap_or_else(|_| "/var/cache/knode/k8s-1.37.2/bin".into());
    kubelets::Paths {
        repo,
        ours: PathBuf::from(target).join("release/kubelet"),
        upstream: PathBuf::from(k8s_bin).join("kubelet"),
        containerd_endpoint: format!("unix://{sock}"),
        out_dir: out.to_path_buf(),
    }
}

/// The admin client, the runtime and the paths of a one-kubelet benchmark run.
async fn setup(out: &std::path::Path) -> anyhow::Result<(kubelets::Paths, kube::Client, kubelet_cri::RemoteRuntime)> {
    let paths = paths(out);
    anyhow::ensure!(paths.ours.is_file(), "{} not found (cargo build --release -p kubelet-cmd)", paths.ours.display());
    std::fs::create_dir_all(out)?;
    let client = kubelet_cluster::client::client_from_kubeconfig(&PathBuf::from(kubelets::CP_DIR).join("admin.kubeconfig")).await?;
    let rt = kubelet_cri::RemoteRuntime::connect(&paths.containerd_endpoint, Duration::from_secs(120))?;
    pods::ensure_namespace(&client).await?;
    Ok((paths, client, rt))
}

/// Writes one run's result as `<prefix><kubelet>-round<N>.json`; returns the file.
fn save<T: serde::Serialize>(
    out: &std::path::Path,
    prefix: &str,
    which: kubelets::Which,
    round: usize,
    result: &T,
) -> anyhow::Result<PathBuf> {
    let file = out.join(format!("{prefix}{}-round{round}.json", which.name()));
    std::fs::write(&file, serde_json::to_string_pretty(result)?)?;
    Ok(file)
}

/// Every `<prefix>*.json` result in `out`.
fn load_results<T: serde::de::DeserializeOwned>(out: &std::path::Path, prefix: &str) -> anyhow::Result<Vec<T>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(".json") {
            files.push(path);
        }
    }
    anyhow::ensure!(!files.is_empty(), "no {prefix}*.json results in {}", out.display());
    files.sort();
    files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p)?).with_context(|| format!("parsing {}", p.display()))).collect()
}

async fn eviction_one(args: Args) -> anyhow::Result<()> {
    let which = args.kubelet.context("eviction needs --kubelet ours|upstream")?;
    let (paths, client, rt) = setup(&args.out).await?;
    let result = eviction::run(which, args.round, &paths, &args.settings.image, &client, &rt).await?;
    save(&args.out, "eviction-", which, args.round, &result)?;
    print!("{}", eviction::report(std::slice::from_ref(&result)));
    Ok(())
}

fn eviction_report(out: &std::path::Path) -> anyhow::Result<()> {
    let mut results: Vec<eviction::EvictionResult> = load_results(out, "eviction-")?;
    results.sort_by(|a, b| (&a.kubelet, a.round).cmp(&(&b.kubelet, b.round)));
    print!("{}", eviction::report(&results));
    Ok(())
}

async fn logs_one(args: Args) -> anyhow::Result<()> {
    let which = args.kubelet.context("logs needs --kubelet ours|upstream")?;
    let (paths, client, rt) = setup(&args.out).await?;
    let result = logs::run(which, args.round, &paths, &args.settings.image, &client, &rt).await?;
    save(&args.out, "logs-", which, args.round, &result)?;
    print!("{}", logs::report(std::slice::from_ref(&result)));
    Ok(())
}

async fn pulls_one(args: Args) -> anyhow::Result<()> {
    let which = args.kubelet.context("pulls needs --kubelet ours|upstream")?;
    let serialized = args.serialize.context("pulls needs --serialize true|false")?;
    let list = args.images.context("pulls needs --images FILE")?;
    let images: Vec<String> = std::fs::read_to_string(&list)
        .with_context(|| format!("reading {}", list.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!images.is_empty(), "{} lists no images", list.display());
    let (paths, client, rt) = setup(&args.out).await?;
    let result = pulls::run(which, args.round, serialized, &paths, &images, &client, &rt).await?;
    let mode = if serialized { "serialized" } else { "parallel" };
    save(&args.out, &format!("pulls-{mode}-"), which, args.round, &result)?;
    print!("{}", pulls::report(std::slice::from_ref(&result)));
    Ok(())
}

async fn run_one(args: Args) -> anyhow::Result<()> {
    let which = args.kubelet.context("run needs --kubelet ours|upstream")?;
    let (paths, client, rt) = setup(&args.out).await?;
    if args.settings.objects {
        pods::ensure_objects(&client, args.settings.pods).await?;
    }
    let result = run::run(which, args.round, &paths, &args.settings, &client, &rt).await;
    if args.settings.objects
        && let Err(e) = pods::delete_objects(&client).await
    {
        eprintln!("deleting the benchmark's ConfigMaps and Secrets: {e:#}");
    }
    let result = result?;
    let file = save(&args.out, "", which, args.round, &result)?;
    println!("{}", report::table(std::slice::from_ref(&result)));
    eprintln!("result: {}", file.display());
    Ok(())
}

fn report(out: &std::path::Path) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for entry in std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let path = entry?.path();
        let other = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("eviction-") || n.starts_with("logs-") || n.starts_with("pulls-"));
        if path.extension().is_some_and(|e| e == "json") && !other {
            let text = std::fs::read_to_string(&path)?;
            results.push(serde_json::from_str::<run::RunResult>(&text).with_context(|| format!("parsing {}", path.display()))?);
        }
    }
    anyhow::ensure!(!results.is_empty(), "no results in {}", out.display());
    results.sort_by(|a, b| (&a.kubelet, a.round).cmp(&(&b.kubelet, b.round)));
    println!("{}", report::table(&results));
    Ok(())
}
