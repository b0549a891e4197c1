//! `kube-proxy`: the service proxy. Parses upstream's flags and
//! `KubeProxyConfiguration`, sets up logging from `--v`, turns SIGTERM/SIGINT
//! into an orderly shutdown and runs [`proxy::app::run`] (or
//! [`proxy::app::cleanup`] for `--cleanup`).

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn init_logging(verbosity: u32) {
    // klog levels: 0–2 are normal operation, 3–4 debugging, 5+ tracing.
    let level = match verbosity {
        0..=2 => "info",
        3..=4 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("KUBE_PROXY_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
    }
    shutdown.cancel();
}

/// One malloc arena instead of glibc's default of 8 per core: the proxy's
/// watch tasks, sync thread and servers never contend, and per-thread arenas
/// each kept their own freed heap (RSS at 2k Services 65 -> 44 MiB). And a
/// fixed mmap threshold: glibc otherwise raises it after the first large free,
/// so a full sync's big transient buffers (the transaction text, list pages)
/// would come from the heap and leave holes between long-lived data that
/// `malloc_trim` cannot return (docs/benchmarks.md).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let opts = match proxy_config::load_from_args(std::env::args_os()) {
        Ok(opts) => opts,
        Err(e @ (proxy_config::ConfigError::Help { .. } | proxy_config::ConfigError::Version { .. })) => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("kube-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(opts.config.logging.verbosity);
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    if opts.flags.cleanup {
        return match proxy::app::cleanup(None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kube-proxy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        match proxy::app::run(opts, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("kube-proxy: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
