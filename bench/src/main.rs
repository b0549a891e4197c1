//! `standalone-bench`: the standalone kubelet against bare CRI on the containerd that
//! `hack/node-env.sh` prepared. Runs the baseline and the kubelet alternately, N times each, and
//! prints a table (see `docs/benchmarks.md`). A benchmark, never a test: run it on a quiet machine.
//!
//! ```text
//! standalone-bench [--runs N] [--pods N] [--kubelet PATH] [--idle-wait S] [--settle S] [--out DIR]
//! ```

mod baseline;
mod bench_pods;
mod kubelet_run;
mod probe;
mod proc_stats;
mod report;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kubelet_cri::RemoteRuntime;

struct Args {
    runs: usize,
    pods: usize,
    kubelet: PathBuf,
    idle_wait: Duration,
    settle: Duration,
    out: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut a = Args {
        runs: 3,
        pods: 50,
        kubelet: PathBuf::from(target).join("release/kubelet"),
        idle_wait: Duration::from_secs(5),
        settle: Duration::from_secs(10),
        out: PathBuf::from("/tmp/knode-bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => a.runs = value()?.parse()?,
            "--pods" => a.pods = value()?.parse()?,
            "--kubelet" => a.kubelet = value()?.into(),
            "--idle-wait" => a.idle_wait = Duration::from_secs(value()?.parse()?),
            "--settle" => a.settle = Duration::from_secs(value()?.parse()?),
            "--out" => a.out = value()?.into(),
            "-h" | "--help" => {
                println!("standalone-bench [--runs N] [--pods N] [--kubelet PATH] [--idle-wait S] [--settle S] [--out DIR]");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?} (see --help)"),
        }
    }
    anyhow::ensure!(a.runs > 0 && a.pods > 0, "--runs and --pods must be positive");
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // The same runtime shape as the kubelet binary: two worker threads.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let sock = std::env::var("KNODE_CONTAINERD_SOCK").unwrap_or_else(|_| "/run/knode/containerd/containerd.sock".into());
    let endpoint = format!("unix://{sock}");
    let image = std::env::var("KNODE_BUSYBOX_IMAGE").unwrap_or_else(|_| "localhost/knode/busybox:1.35".into());
    anyhow::ensure!(args.kubelet.is_file(), "kubelet binary {} not found (cargo build --release -p kubelet-cmd)", args.kubelet.display());
    std::fs::create_dir_all(&args.out)?;
    let rt = RemoteRuntime::connect(&endpoint, Duration::from_secs(120))?;
    let leftovers =
        probe::remove_bench_pods(&rt).await.context("cleaning up earlier benchmark pods (is containerd up? run hack/node-env.sh)")?;
    if leftovers > 0 {
        eprintln!("removed {leftovers} sandboxes left by an earlier benchmark");
    }
    let foreign = probe::foreign_sandboxes(&rt).await?;
    if foreign > 0 {
        eprintln!("WARNING: {foreign} kubelet-labelled sandboxes of other pods exist; the benchmarked kubelet will adopt (and stop) them");
    }
    let ticks = probe::clock_ticks();
    let bench = kubelet_run::KubeletBench {
        binary: &args.kubelet,
        endpoint: &endpoint,
        image: &image,
        pods: args.pods,
        idle_wait: args.idle_wait,
        settle: args.settle,
        ticks,
        out_dir: &args.out,
    };
    let (mut base, mut kube) = (Vec::new(), Vec::new());
    for n in 0..args.runs {
        let b = baseline::run(&rt, &endpoint, &image, args.pods, ticks).await.with_context(|| format!("baseline run {n}"))?;
        eprintln!(
            "run {n} baseline: all running {:.2} s (last start {:.2} s), containerd CPU {:.2} s, teardown {:.2} s",
            b.all_running.as_secs_f64(),
            b.last_start_returned.as_secs_f64(),
            b.containerd_cpu_s,
            b.teardown.as_secs_f64()
        );
        base.push(b);
        let k = bench.run(&rt, n).await?;
        eprintln!(
            "run {n} kubelet:  all running {:.2} s (/pods {:.2} s), kubelet CPU {:.2} s, containerd CPU {:.2} s, RSS idle {} KiB, loaded {} KiB, teardown {:.2} s",
            k.all_running.as_secs_f64(),
            k.all_reported.as_secs_f64(),
            k.startup_cpu_s,
            k.containerd_cpu_s,
            k.idle.rss_kib,
            k.loaded.rss_kib,
            k.teardown.as_secs_f64()
        );
        kube.push(k);
    }
    println!("{}", report::table(args.pods, &base, &kube));
    println!("kubelet logs and smaps_rollup snapshots: {}", args.out.display());
    Ok(())
}
