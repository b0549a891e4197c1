//! Writing an `nft -f` transaction as text, in the syntax knftables writes
//! (`add chain ip kube-proxy NAME`, `add element ... { KEY : VALUE }`).
//! Only formatting: what to write is decided by `setup.rs`/`service.rs`/`sync.rs`.
//!
//! A transaction made only of the commands a partial sync uses (per-Service
//! chains, their [`Rule`]s, affinity sets, map elements) also keeps them as
//! [`Command`]s, which the netlink applier sends to the kernel directly;
//! anything else (the table's fixed skeleton) makes it text-only.

use std::fmt::Write;

use super::rule::Rule;
use crate::net::IpFamily;

/// One command of a transaction that can be sent without `nft`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `add chain`: a per-Service chain, without comment.
    AddChain(String),
    /// `flush chain`: empty a chain before rewriting its rules.
    FlushChain(String),
    /// `delete chain`: remove an empty, unreferenced chain.
    DeleteChain(String),
    /// `add rule`: append a rule to a per-Service chain.
    AddRule {
        /// The chain's name.
        chain: String,
        /// The rule to append.
        rule: Rule,
    },
    /// A session-affinity set: `type ipv4_addr ; flags dynamic,timeout ; timeout Ns`.
    AddAffinitySet {
        /// The set's name (`affinity-...`).
        name: String,
        /// How long a client's entry lasts, in seconds (`sessionAffinityConfig.clientIP.timeoutSeconds`).
        timeout_secs: u32,
    },
    /// `delete set` / `delete map`: remove a session-affinity set or an endpoint map.
    DeleteSet(String),
    /// `flush set` / `flush map`: remove every element of a set or map.
    FlushSet(String),
    /// An endpoint data map: `typeof numgen random mod 1 : ip daddr . tcp dport`.
    AddEndpointMap {
        /// The map's name (`endpoints-<proto>-<n>`).
        name: String,
        /// The protocol its values' ports are of.
        protocol: crate::service::Protocol,
    },
    /// `key` and `value` in nft syntax (`1.2.3.4 . tcp . 80`, `goto CHAIN`).
    AddElement {
        /// The set or map the element goes into.
        container: String,
        /// The element's key.
        key: String,
        /// The element's value, for a map (`address . port`, a verdict).
        value: Option<String>,
        /// The element's comment, if any.
        comment: Option<String>,
    },
    /// `delete element`: remove an element from a set or map.
    DeleteElement {
        /// The set or map the element is in.
        container: String,
        /// The element's key, in nft syntax.
        key: String,
    },
}

/// The table every object lives in.
pub const TABLE: &str = "kube-proxy";

/// The comment of every endpoint map.
pub const ENDPOINT_MAP_COMMENT: &str = "endpoints of load-balancing chains";

/// One `nft -f` transaction, built line by line.
#[derive(Debug, Clone)]
pub struct Transaction {
    family: IpFamily,
    prefix: &'static str,
    text: String,
    lines: usize,
    /// The commands, while every one so far has a [`Command`] form.
    commands: Option<Vec<Command>>,
    /// A full sync's fixed part: the text's first `bytes` (`lines` lines), which has no
    /// [`Command`] form; `commands` are those of the rest.
    skeleton: Option<Skeleton>,
}

/// Where a full sync's fixed part ends in its transaction's text.
#[derive(Debug, Clone, Copy)]
struct Skeleton {
    bytes: usize,
    lines: usize,
}

impl Transaction {
    /// An empty transaction on table `kube-proxy` of `family` that keeps its commands in
    /// [`Command`] form while it can.
    pub fn new(family: IpFamily) -> Self {
        let prefix = match family {
            IpFamily::V4 => "ip kube-proxy",
            IpFamily::V6 => "ip6 kube-proxy",
        };
        Transaction { family, prefix, text: String::new(), lines: 0, commands: Some(Vec::new()), skeleton: None }
    }

    /// Appends `other`'s commands after this one's.
    pub fn append(&mut self, other: Transaction) {
        self.text.push_str(&other.text);
        self.lines += other.lines;
        match (&mut self.commands, other.commands) {
            (Some(mine), Some(theirs)) => mine.extend(theirs),
            (mine, _) => *mine = None,
        }
    }

    /// A line with no [`Command`] form: the transaction becomes text-only.
    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        self.commands = None;
        self.typed_line(args);
    }

    fn typed_line(&mut self, args: std::fmt::Arguments<'_>) {
        self.text.write_fmt(args).expect("writing to a String");
        self.text.push('\n');
        self.lines += 1;
    }

    /// Records a command, built only when the transaction keeps commands.
    fn command(&mut self, c: impl FnOnce() -> Command) {
        if let Some(cmds) = &mut self.commands {
            cmds.push(c());
        }
    }

    /// The family of the table the transaction writes (`ip` or `ip6`).
    pub fn family(&self) -> IpFamily {
        self.family
    }

    /// The commands (after the skeleton, if any), unless one has no [`Command`] form.
    pub fn commands(&self) -> Option<&[Command]> {
        self.commands.as_deref()
    }

    /// Ends a full sync's fixed part (table, base and fixed chains, their rules, the
    /// skeleton's sets and maps): it has no [`Command`] form and is applied with `nft -f`
    /// on its own, first; what follows keeps its commands. The fixed part never empties
    /// a set or map that Services fill, so the kernel's ruleset stays whole between the
    /// two.
    pub fn end_skeleton(&mut self) {
        self.skeleton = Some(Skeleton { bytes: self.text.len(), lines: self.lines });
        self.commands = Some(Vec::new());
    }

    /// A full sync's fixed part, as `nft -f` text.
    pub fn skeleton(&self) -> Option<&str> {
        self.skeleton.map(|s| &self.text[..s.bytes])
    }

    /// The text after the skeleton (all of it without one): the lines
    /// [`Self::commands`] stand for, one per command, when they exist.
    pub fn after_skeleton(&self) -> &str {
        &self.text[self.skeleton.map_or(0, |s| s.bytes)..]
    }

    /// Number of lines of the skeleton (0 without one).
    pub fn skeleton_lines(&self) -> usize {
        self.skeleton.map_or(0, |s| s.lines)
    }

    /// `add table ip kube-proxy { comment "..." ; }`
    pub fn add_table(&mut self, comment: &str) {
        let p = self.prefix;
        self.line(format_args!("add table {p} {{ comment \"{comment}\" ; }}"));
    }

    /// `add chain` (creates the chain if missing).
    pub fn add_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("add chain {p} {name}"));
        self.command(|| Command::AddChain(name.to_string()));
    }

    /// `add chain ... { comment "C" ; }` (a chain of the fixed skeleton; makes the
    /// transaction text-only).
    pub fn add_chain_with_comment(&mut self, name: &str, comment: &str) {
        let p = self.prefix;
        self.line(format_args!("add chain {p} {name} {{ comment \"{comment}\" ; }}"));
    }

    /// A base chain: `{ type filter hook input priority -110 ; }`.
    pub fn add_base_chain(&mut self, name: &str, kind: &str, hook: &str, priority: i32) {
        let p = self.prefix;
        self.line(format_args!("add chain {p} {name} {{ type {kind} hook {hook} priority {priority} ; }}"));
    }

    /// `flush chain`: removes every rule of the chain.
    pub fn flush_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("flush chain {p} {name}"));
        self.command(|| Command::FlushChain(name.to_string()));
    }

    /// `delete chain`: the chain must be empty and unreferenced.
    pub fn delete_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("delete chain {p} {name}"));
        self.command(|| Command::DeleteChain(name.to_string()));
    }

    /// A rule given as text (the fixed chains'): makes the transaction text-only.
    pub fn add_rule(&mut self, chain: &str, rule: &str) {
        let p = self.prefix;
        self.line(format_args!("add rule {p} {chain} {rule}"));
    }

    /// A per-Service chain's rule.
    pub fn add_service_rule(&mut self, chain: &str, rule: &Rule) {
        let p = self.prefix;
        self.typed_line(format_args!("add rule {p} {chain} {rule}"));
        self.command(|| Command::AddRule { chain: chain.to_string(), rule: rule.clone() });
    }

    /// `add set ... { type ipv4_addr ; flags dynamic,timeout ; timeout Ns ; }`
    pub fn add_affinity_set(&mut self, name: &str, timeout_secs: u32) {
        let kind = super::addr_type(self.family);
        let p = self.prefix;
        self.typed_line(format_args!("add set {p} {name} {{ type {kind} ; flags dynamic,timeout ; timeout {timeout_secs}s ; }}"));
        self.command(|| Command::AddAffinitySet { name: name.to_string(), timeout_secs });
    }

    /// `add set ... { type T ; comment "C" ; }` (a set of the fixed skeleton).
    pub fn add_set(&mut self, name: &str, kind: &str, comment: &str) {
        let p = self.prefix;
        self.line(format_args!("add set {p} {name} {{ type {kind} ; comment \"{comment}\" ; }}"));
    }

    /// `add map ... { type T ; comment "C" ; }` (a map of the fixed skeleton).
    pub fn add_map(&mut self, name: &str, kind: &str, comment: &str) {
        let p = self.prefix;
        self.line(format_args!("add map {p} {name} {{ type {kind} ; comment \"{comment}\" ; }}"));
    }

    /// An endpoint data map: `numgen` value → `address . port`.
    pub fn add_endpoint_map(&mut self, name: &str, proto: crate::service::Protocol) {
        let (p, ipx, l4) = (self.prefix, super::ip_x(self.family), proto.lower());
        self.typed_line(format_args!(
            "add map {p} {name} {{ typeof numgen random mod 1 : {ipx} daddr . {l4} dport ; comment \"{ENDPOINT_MAP_COMMENT}\" ; }}"
        ));
        self.command(|| Command::AddEndpointMap { name: name.to_string(), protocol: proto });
    }

    /// `flush set` / `flush map` (`kind`): removes every element.
    pub fn flush_container(&mut self, kind: &str, name: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("flush {kind} {p} {name}"));
        self.command(|| Command::FlushSet(name.to_string()));
    }

    /// `delete set` / `delete map` (`kind`).
    pub fn delete_container(&mut self, kind: &str, name: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("delete {kind} {p} {name}"));
        self.command(|| Command::DeleteSet(name.to_string()));
    }

    /// `delete set`: removes a session-affinity set.
    pub fn delete_set(&mut self, name: &str) {
        self.delete_container("set", name);
    }

    /// `add element ... NAME { KEY [comment "C"] [: VALUE] }`
    pub fn add_element(&mut self, container: &str, key: &str, value: Option<&str>, comment: Option<&str>) {
        let mut body = key.to_string();
        if let Some(c) = comment {
            let _ = write!(body, " comment \"{c}\"");
        }
        if let Some(v) = value {
            let _ = write!(body, " : {v}");
        }
        let p = self.prefix;
        self.typed_line(format_args!("add element {p} {container} {{ {body} }}"));
        self.command(|| Command::AddElement {
            container: container.to_string(),
            key: key.to_string(),
            value: value.map(str::to_string),
            comment: comment.map(str::to_string),
        });
    }

    /// `delete element ... NAME { KEY }`.
    pub fn delete_element(&mut self, container: &str, key: &str) {
        let p = self.prefix;
        self.typed_line(format_args!("delete element {p} {container} {{ {key} }}"));
        self.command(|| Command::DeleteElement { container: container.to_string(), key: key.to_string() });
    }

    /// Number of commands in the transaction.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// Whether the transaction has no command.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The transaction's `nft -f` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The transaction's `nft -f` text, without copying it.
    pub fn into_string(self) -> String {
        self.text
    }
}
