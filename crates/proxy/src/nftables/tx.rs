//! Writing an `nft -f` transaction as text, in the syntax knftables writes
//! (`add chain ip kube-proxy NAME`, `add element ... { KEY : VALUE }`).
//! Only formatting: what to write is decided by `setup.rs`/`service.rs`/`sync.rs`.

use std::fmt::Write;

use crate::net::IpFamily;

/// The table every object lives in.
pub const TABLE: &str = "kube-proxy";

/// One `nft -f` transaction, built line by line.
#[derive(Debug, Clone)]
pub struct Transaction {
    prefix: &'static str,
    text: String,
    lines: usize,
}

impl Transaction {
    pub fn new(family: IpFamily) -> Self {
        let prefix = match family {
            IpFamily::V4 => "ip kube-proxy",
            IpFamily::V6 => "ip6 kube-proxy",
        };
        Transaction {
            prefix,
            text: String::new(),
            lines: 0,
        }
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        self.text.write_fmt(args).expect("writing to a String");
        self.text.push('\n');
        self.lines += 1;
    }

    /// `add table ip kube-proxy { comment "..." ; }`
    pub fn add_table(&mut self, comment: &str) {
        let p = self.prefix;
        self.line(format_args!("add table {p} {{ comment \"{comment}\" ; }}"));
    }

    pub fn add_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.line(format_args!("add chain {p} {name}"));
    }

    pub fn add_chain_with_comment(&mut self, name: &str, comment: &str) {
        let p = self.prefix;
        self.line(format_args!(
            "add chain {p} {name} {{ comment \"{comment}\" ; }}"
        ));
    }

    /// A base chain: `{ type filter hook input priority -110 ; }`.
    pub fn add_base_chain(&mut self, name: &str, kind: &str, hook: &str, priority: i32) {
        let p = self.prefix;
        self.line(format_args!(
            "add chain {p} {name} {{ type {kind} hook {hook} priority {priority} ; }}"
        ));
    }

    pub fn flush_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.line(format_args!("flush chain {p} {name}"));
    }

    pub fn delete_chain(&mut self, name: &str) {
        let p = self.prefix;
        self.line(format_args!("delete chain {p} {name}"));
    }

    pub fn add_rule(&mut self, chain: &str, rule: &str) {
        let p = self.prefix;
        self.line(format_args!("add rule {p} {chain} {rule}"));
    }

    /// `add set ... { type T ; [flags F ;] [timeout Ns ;] [comment "C" ;] }`
    pub fn add_set(
        &mut self,
        name: &str,
        kind: &str,
        flags: &str,
        timeout_secs: Option<u32>,
        comment: Option<&str>,
    ) {
        let mut body = format!("type {kind} ;");
        if !flags.is_empty() {
            let _ = write!(body, " flags {flags} ;");
        }
        if let Some(t) = timeout_secs {
            let _ = write!(body, " timeout {t}s ;");
        }
        if let Some(c) = comment {
            let _ = write!(body, " comment \"{c}\" ;");
        }
        let p = self.prefix;
        self.line(format_args!("add set {p} {name} {{ {body} }}"));
    }

    pub fn add_map(&mut self, name: &str, kind: &str, comment: &str) {
        let p = self.prefix;
        self.line(format_args!(
            "add map {p} {name} {{ type {kind} ; comment \"{comment}\" ; }}"
        ));
    }

    pub fn flush_container(&mut self, kind: &str, name: &str) {
        let p = self.prefix;
        self.line(format_args!("flush {kind} {p} {name}"));
    }

    pub fn delete_container(&mut self, kind: &str, name: &str) {
        let p = self.prefix;
        self.line(format_args!("delete {kind} {p} {name}"));
    }

    /// `add element ... NAME { KEY [comment "C"] [: VALUE] }`
    pub fn add_element(
        &mut self,
        container: &str,
        key: &str,
        value: Option<&str>,
        comment: Option<&str>,
    ) {
        let mut body = key.to_string();
        if let Some(c) = comment {
            let _ = write!(body, " comment \"{c}\"");
        }
        if let Some(v) = value {
            let _ = write!(body, " : {v}");
        }
        let p = self.prefix;
        self.line(format_args!("add element {p} {container} {{ {body} }}"));
    }

    pub fn delete_element(&mut self, container: &str, key: &str) {
        let p = self.prefix;
        self.line(format_args!("delete element {p} {container} {{ {key} }}"));
    }

    /// Number of commands in the transaction.
    pub fn len(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}
