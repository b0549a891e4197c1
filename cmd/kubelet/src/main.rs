//! `kubelet`: the node agent. Parses upstream's flags and `KubeletConfiguration`, sets up logging
//! from `--v`, turns SIGTERM/SIGINT into an orderly shutdown and runs [`kubelet_app::run`].

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn init_logging(verbosity: u8) {
    // klog levels: 0–2 are normal operation, 3–4 debugging, 5+ tracing.
    let level = match verbosity {
        0..=2 => "info",
        3..=4 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("KUBELET_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).with_target(false).init();
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

/// One malloc arena instead of glibc's default of 8 per core: the kubelet's few threads do not
/// contend, and per-thread arenas roughly doubled its RSS with 100 pods (docs/benchmarks.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let opts = match kubelet_config::load_from_args(std::env::args_os()) {
        Ok(opts) => opts,
        Err(e @ (kubelet_config::ConfigError::Help { .. } | kubelet_config::ConfigError::Version { .. })) => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("kubelet: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(opts.flags.verbosity);
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubelet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        match kubelet_app::run(opts, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("kubelet: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
