//! The kubelet's health as others read it: [`KubeletHealth`] answers `/healthz` (the sync loop
//! iterates, the PLEG relisted recently), [`NodeHealth`] gives the node status its pressure
//! conditions and `PLEG is not healthy` (upstream's `runtimeState` health checks).

use std::time::Duration;

use kubelet_types::node::{KubeletHealthSource, Pressure};
use tokio::sync::watch;

use crate::pleg::Relist;
use crate::server::HealthChecker;
use crate::sync_loop::SyncLoopHeartbeat;

/// How long the sync loop may be silent before `/healthz` fails (upstream's 3 minutes).
const SYNC_LOOP_SILENCE: Duration = Duration::from_secs(180);

/// `/healthz`: the sync loop iterates and the PLEG relisted recently.
pub struct KubeletHealth {
    /// When the sync loop last iterated; silent for 3 minutes fails `/healthz`.
    pub heartbeat: SyncLoopHeartbeat,
    /// The PLEG's latest relist; older than `RELIST_THRESHOLD` fails `/healthz`.
    pub relist: watch::Receiver<Relist>,
}

impl HealthChecker for KubeletHealth {
    fn healthy(&self) -> Result<(), String> {
        // Before the first relist /healthz stays healthy (the node status says why it is not Ready).
        let relist = self.relist.borrow();
        if relist.at.is_some()
            && let Some(why) = relist.unhealthy()
        {
            return Err(why);
        }
        drop(relist);
        match self.heartbeat.age() {
            Some(age) if age > SYNC_LOOP_SILENCE => Err(format!("syncloop was last active {age:?} ago")),
            _ => Ok(()),
        }
    }
}

/// The kubelet's health for the node status: eviction pressure and PLEG freshness.
pub struct NodeHealth {
    /// The eviction manager's latest pressure.
    pub pressure: watch::Receiver<Pressure>,
    /// The PLEG's latest relist: a stale one keeps the node not Ready (`PLEG is not healthy`).
    pub relist: watch::Receiver<Relist>,
}

impl KubeletHealthSource for NodeHealth {
    fn pressure(&self) -> Pressure {
        *self.pressure.borrow()
    }

    fn not_ready_reasons(&self) -> Vec<String> {
        self.relist.borrow().unhealthy().map(|why| format!("PLEG is not healthy: {why}")).into_iter().collect()
    }
}
