//! The iptables mode: every sync writes the whole ruleset ([`crate::iptables::ruleset`]) with
//! one `iptables-restore`.

use proxy_config::ProxyMode;

use super::{Backend, BackendReport, SyncError, SyncInput};
use crate::applier::RulesApplier;
use crate::iptables::{IptablesConfig, ruleset};
use crate::topology::NodeTopology;

/// The iptables backend and its configuration.
#[derive(Debug)]
pub struct IptablesBackend {
    /// What the ruleset depends on besides the Services: node, family, masquerading and
    /// local-traffic detection.
    pub cfg: IptablesConfig,
}

impl IptablesBackend {
    /// A backend writing the rules `cfg` describes.
    pub fn new(cfg: IptablesConfig) -> Self {
        IptablesBackend { cfg }
    }
}

impl Backend for IptablesBackend {
    fn mode(&self) -> ProxyMode {
        ProxyMode::IPTables
    }

    fn node(&self) -> &NodeTopology {
        &self.cfg.node
    }

    fn set_node(&mut self, node: NodeTopology) {
        self.cfg.node = node;
    }

    fn sync(&mut self, input: SyncInput<'_>, applier: &mut dyn RulesApplier) -> Result<BackendReport, SyncError> {
        let text = ruleset(input.services, input.endpoints, &self.cfg);
        let commands = text.lines().count();
        applier.apply(&text)?;
        Ok(BackendReport { full: true, commands, cleanup_error: None })
    }
}
