//! The `conntrack` command-line tool as a [`ConntrackCleaner`]
//! (`conntrack -D ...`, from Debian's conntrack package). "0 flow entries
//! have been deleted" is success, as upstream treats it.

use super::{ConntrackCleaner, ConntrackError, Deletion};
use crate::applier::{ApplyError, Tool};

/// Runs `conntrack -D` (optionally in a named network namespace).
#[derive(Debug, Clone)]
pub struct ConntrackCli {
    tool: Tool,
}

impl ConntrackCli {
    /// A cleaner running `conntrack` on the host, or in network namespace `netns` (`ip netns exec`).
    pub fn new(netns: Option<&str>) -> Self {
        ConntrackCli { tool: Tool::new("conntrack").in_netns(netns) }
    }
}

impl ConntrackCleaner for ConntrackCli {
    fn delete(&mut self, deletion: &Deletion) -> Result<(), ConntrackError> {
        let args = deletion.args();
        let mut argv: Vec<&str> = vec!["-D"];
        argv.extend(args.iter().map(String::as_str));
        let err = |source| ConntrackError { filter: args.join(" "), source };
        let out = self.tool.output(&argv, None).map_err(err)?;
        if out.success || out.stderr.contains("0 flow entries") {
            return Ok(());
        }
        Err(err(ApplyError::Rejected { tool: self.tool.describe(&argv), message: out.stderr.trim().to_string() }))
    }
}
