//! The rules a Service's own chains hold, as data: a few matches, one
//! statement, an optional comment. [`Rule`]'s `Display` is the `nft` syntax
//! the full sync writes; the netlink applier encodes the same value into
//! kernel expressions for partial syncs, so both paths program one ruleset.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::LocalDetector;
use crate::net::{Cidr, IpFamily};
use crate::service::Protocol;

/// Which address of the IP header a match reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The source address (`saddr`).
    Source,
    /// The destination address (`daddr`).
    Destination,
}

/// An address or a network (`1.2.3.4`, `10.0.0.0/8`), printed as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrOrCidr {
    /// A single address.
    Addr(IpAddr),
    /// A network.
    Cidr(Cidr),
}

impl AddrOrCidr {
    /// `(address, prefix length)`; an address is a full-length prefix.
    pub fn prefix(&self) -> (IpAddr, u8) {
        match self {
            AddrOrCidr::Addr(ip) => (*ip, if ip.is_ipv4() { 32 } else { 128 }),
            AddrOrCidr::Cidr(c) => (c.addr, c.prefix),
        }
    }
}

impl fmt::Display for AddrOrCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrOrCidr::Addr(ip) => write!(f, "{ip}"),
            AddrOrCidr::Cidr(c) => write!(f, "{c}"),
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    /// `ip saddr [!=] 10.0.0.0/8`
    Addr {
        /// The family of the header read (`ip` or `ip6`).
        family: IpFamily,
        /// Which address of the header is compared.
        dir: Direction,
        /// Match when the address is *not* `value` (`!=`).
        negate: bool,
        /// The address or network compared with.
        value: AddrOrCidr,
    },
    /// `ip saddr @SET`
    SourceInSet {
        /// The family of the source address (`ip` or `ip6`).
        family: IpFamily,
        /// The set's name in table `kube-proxy` (a session-affinity set).
        set: String,
    },
    /// `iifname [!=] NAME`, or `iifname [!=] "PREFIX*"` when `prefix`.
    Iifname {
        /// Match when the input interface is *not* this one (`!=`).
        negate: bool,
        /// The interface name, or its prefix when `prefix`.
        name: String,
        /// `name` is a prefix (`detectLocalMode: InterfaceNamePrefix`).
        prefix: bool,
    },
    /// `fib saddr type local`
    FibSourceLocal,
    /// `numgen random mod N 0`: true with probability 1/N.
    RandomOneIn(u32),
    /// `meta l4proto tcp`
    L4Proto(Protocol),
}

/// Where a rule sends the packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `jump CHAIN`: run the chain, then continue here.
    Jump(String),
    /// `goto CHAIN`: continue in the chain, not returning here.
    Goto(String),
    /// `drop`: discard the packet.
    Drop,
    /// `return`: leave this chain.
    Return,
}

/// What a rule does once its matches hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Statement {
    /// End the rule with this verdict.
    Verdict(Verdict),
    /// `update @SET { ip saddr }` (session affinity).
    UpdateSourceInSet {
        /// The family of the source address stored (`ip` or `ip6`).
        family: IpFamily,
        /// The affinity set to add the client's source address to.
        set: String,
    },
    /// `dnat to 10.0.0.1:80`
    Dnat(SocketAddr),
    /// `dnat ip to numgen random mod N offset O map @M`: endpoint `O + k`
    /// (k < N, chosen at random) of the data map `M` (see `slots.rs`).
    DnatFromMap {
        /// The family of the DNAT (`dnat ip` or `dnat ip6`).
        family: IpFamily,
        /// How many endpoints the chain has in the map (`N`): the random pick's range.
        modulus: u32,
        /// The map key of the chain's first endpoint (`O`, the slot's first key).
        offset: u32,
        /// The endpoint data map (`M`, e.g. `endpoints-tcp-0`), shared by up to
        /// `SLOTS_PER_MAP` chains of one protocol.
        map: &'static str,
    },
}

/// A rule of a per-Service chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The conditions, all of which must hold, in order.
    pub matches: Vec<Match>,
    /// What the rule does when they hold.
    pub statement: Statement,
    /// An `nft` comment on the rule, for readers of `nft list ruleset`.
    pub comment: Option<&'static str>,
}

impl Rule {
    /// A rule without a comment.
    pub fn new(matches: Vec<Match>, statement: Statement) -> Self {
        Rule { matches, statement, comment: None }
    }

    /// A rule with no matches: `goto CHAIN`, `drop`, ...
    pub fn verdict(v: Verdict) -> Self {
        Rule::new(Vec::new(), Statement::Verdict(v))
    }

    /// The rule with `comment` set.
    pub fn with_comment(mut self, comment: &'static str) -> Self {
        self.comment = Some(comment);
        self
    }
}

impl LocalDetector {
    /// The match for "from a local pod" (`negate`: "not from a local pod");
    /// `None` when local traffic detection is off.
    pub fn local_match(&self, family: IpFamily, negate: bool) -> Option<Match> {
        match self {
            LocalDetector::None => None,
            LocalDetector::Cidr(c) => Some(Match::Addr { family, dir: Direction::Source, negate, value: AddrOrCidr::Cidr(*c) }),
            LocalDetector::BridgeInterface(i) => Some(Match::Iifname { negate, name: i.clone(), prefix: false }),
            LocalDetector::InterfaceNamePrefix(p) => Some(Match::Iifname { negate, name: p.clone(), prefix: true }),
        }
    }
}

fn ip_x(family: IpFamily) -> &'static str {
    super::ip_x(family)
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Addr { family, dir, negate, value } => {
                let field = match dir {
                    Direction::Source => "saddr",
                    Direction::Destination => "daddr",
                };
                let op = if *negate { "!= " } else { "" };
                write!(f, "{} {field} {op}{value}", ip_x(*family))
            }
            Match::SourceInSet { family, set } => write!(f, "{} saddr @{set}", ip_x(*family)),
            Match::Iifname { negate, name, prefix } => {
                let op = if *negate { "!= " } else { "" };
                if *prefix { write!(f, "iifname {op}\"{name}*\"") } else { write!(f, "iifname {op}{name}") }
            }
            Match::FibSourceLocal => f.write_str("fib saddr type local"),
            Match::RandomOneIn(n) => write!(f, "numgen random mod {n} 0"),
            Match::L4Proto(p) => write!(f, "meta l4proto {}", p.lower()),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Return => f.write_str("return"),
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Verdict(v) => write!(f, "{v}"),
            Statement::UpdateSourceInSet { family, set } => {
                write!(f, "update @{set} {{ {} saddr }}", ip_x(*family))
            }
            Statement::Dnat(SocketAddr::V4(a)) => write!(f, "dnat to {a}"),
            Statement::Dnat(SocketAddr::V6(a)) => write!(f, "dnat to [{}]:{}", a.ip(), a.port()),
            Statement::DnatFromMap { family, modulus, offset, map } => {
                write!(f, "dnat {} to numgen random mod {modulus} offset {offset} map @{map}", ip_x(*family))
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        write!(f, "{}", self.statement)?;
        if let Some(c) = self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_nft_syntax() {
        let cidr: Cidr = "10.0.0.0/8".parse().unwrap();
        let not_local = LocalDetector::Cidr(cidr).local_match(IpFamily::V4, true).unwrap();
        let daddr = Match::Addr {
            family: IpFamily::V4,
            dir: Direction::Destination,
            negate: false,
            value: AddrOrCidr::Addr("198.19.0.1".parse().unwrap()),
        };
        let r = Rule::new(vec![daddr, not_local], Statement::Verdict(Verdict::Jump("mark-for-masquerade".into())));
        assert_eq!(r.to_string(), "ip daddr 198.19.0.1 ip saddr != 10.0.0.0/8 jump mark-for-masquerade");
        let prefix = LocalDetector::InterfaceNamePrefix("veth".into()).local_match(IpFamily::V4, false).unwrap();
        let r = Rule::new(vec![prefix], Statement::Verdict(Verdict::Goto("c".into()))).with_comment("short-circuit pod traffic");
        assert_eq!(r.to_string(), "iifname \"veth*\" goto c comment \"short-circuit pod traffic\"");
        let r = Rule::new(vec![Match::L4Proto(Protocol::Tcp)], Statement::Dnat("[fd00::1]:80".parse().unwrap()));
        assert_eq!(r.to_string(), "meta l4proto tcp dnat to [fd00::1]:80");
        let r = Rule::new(vec![Match::RandomOneIn(3)], Statement::Verdict(Verdict::Goto("e".into())));
        assert_eq!(r.to_string(), "numgen random mod 3 0 goto e");
        let r = Rule::new(Vec::new(), Statement::UpdateSourceInSet { family: IpFamily::V6, set: "a".into() });
        assert_eq!(r.to_string(), "update @a { ip6 saddr }");
        assert_eq!(Rule::verdict(Verdict::Drop).to_string(), "drop");
        let r = Rule::new(
            vec![Match::L4Proto(Protocol::Udp)],
            Statement::DnatFromMap { family: IpFamily::V4, modulus: 3, offset: 1 << 24, map: "endpoints-tcp-0" },
        );
        assert_eq!(r.to_string(), "meta l4proto udp dnat ip to numgen random mod 3 offset 16777216 map @endpoints-tcp-0");
    }
}
