//! Parsers for the value syntaxes of the kubelet's flags, as pflag and
//! `k8s.io/component-base/cli/flag` accept them: Go booleans, `k=v` maps,
//! `k<v` maps, `k:v` multimaps, comma lists, taints and NUMA reservations.
//! Each returns a message on error; `flags.rs` adds the flag name.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::types::{MemoryReservation, Taint};

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected a boolean (true or false)".to_string()),
    }
}

/// A decimal `int32` flag value; surrounding spaces ignored.
pub fn parse_i32(v: &str) -> Result<i32, String> {
    v.trim().parse().map_err(|_| "expected a 32-bit integer".to_string())
}

/// A decimal `int64` flag value; surrounding spaces ignored.
pub fn parse_i64(v: &str) -> Result<i64, String> {
    v.trim().parse().map_err(|_| "expected an integer".to_string())
}

/// A Go duration flag value (`10s`, `1m30s`) as `time.ParseDuration` reads it; negative durations
/// are refused.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    crate::go_duration::parse(v).map_err(|e| e.to_string())
}

/// An IPv4 or IPv6 address flag value (pflag `IP`), returned as written once it parses.
pub fn parse_ip(v: &str) -> Result<String, String> {
    v.parse::<std::net::IpAddr>().map(|_| v.to_string()).map_err(|_| format!("{v:?} is not a valid IP address"))
}

/// A comma list (pflag `StringSlice`), empty items dropped.
pub fn parse_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `k1=v1,k2=v2` (`MapStringString`); with `sep = '<'` the `LangleSeparatedMapStringString`.
pub fn parse_map(v: &str, sep: char) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, val) = pair.split_once(sep).ok_or_else(|| format!("malformed pair {pair:?}, expect string{sep}string"))?;
        out.insert(k.trim().to_string(), val.trim().to_string());
    }
    Ok(out)
}

/// `A=true,B=false` (`MapStringBool`, used by `--feature-gates`).
pub fn parse_bool_map(v: &str) -> Result<BTreeMap<String, bool>, String> {
    parse_map(v, '=')?
        .into_iter()
        .map(|(k, val)| match parse_bool(&val) {
            Ok(b) => Ok((k, b)),
            Err(_) => Err(format!("invalid value of {k}={val}, expected true or false")),
        })
        .collect()
}

/// `a:hello,b:again` (`ColonSeparatedMultimapStringString`), appended to `into`.
pub fn parse_colon_multimap(v: &str, into: &mut BTreeMap<String, Vec<String>>) -> Result<(), String> {
    for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, val) = pair.split_once(':').ok_or_else(|| format!("malformed pair {pair:?}, expect string:string"))?;
        into.entry(k.trim().to_string()).or_default().push(val.trim().to_string());
    }
    Ok(())
}

/// `key=value:effect` or `key:effect`, comma separated (`--register-with-taints`).
pub fn parse_taints(v: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for spec in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || format!("invalid taint spec: {spec}");
        let (kv, effect) = spec.rsplit_once(':').ok_or_else(bad)?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!("invalid taint effect: {effect}, unsupported taint effect"));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(bad());
        }
        crate::labels::check_qualified_name(key).map_err(|e| format!("invalid taint spec: {spec}, {e}"))?;
        crate::labels::check_label_value(value).map_err(|e| format!("invalid taint spec: {spec}, {e}"))?;
        out.push(Taint { key: key.into(), value: value.into(), effect: effect.into(), time_added: None });
    }
    Ok(out)
}

/// `0:memory=1Gi,hugepages-1M=2Gi` (`--reserved-memory`, one NUMA node per occurrence).
pub fn parse_reserved_memory(v: &str) -> Result<MemoryReservation, String> {
    let (node, limits) =
        v.split_once(':').ok_or_else(|| format!("malformed reservation {v:?}, expect <numa-id>:<resource>=<quantity>,..."))?;
    let numa_node = node.trim().parse().map_err(|_| format!("invalid NUMA node id {node:?}"))?;
    Ok(MemoryReservation { numa_node, limits: parse_map(limits, '=')? })
}

/// `pattern=N,...` (`--vmodule`).
pub fn parse_vmodule(v: &str) -> Result<Vec<crate::types::VModuleItem>, String> {
    parse_list(v)
        .into_iter()
        .map(|item| {
            let (pat, n) = item.split_once('=').ok_or_else(|| format!("{item:?} does not have the pattern=N format"))?;
            let verbosity = n.parse().map_err(|_| format!("parsing verbosity in {item:?}: expected a number"))?;
            Ok(crate::types::VModuleItem { file_pattern: pat.to_string(), verbosity })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn maps_and_lists() {
        let m = parse_map("a=b, c=d", '=').unwrap();
        assert_eq!(m["a"], "b");
        assert_eq!(m["c"], "d");
        assert!(parse_map("a", '=').unwrap_err().contains("malformed pair"));
        let e = parse_map("memory.available<1Gi,nodefs.available<10%", '<').unwrap();
        assert_eq!(e["nodefs.available"], "10%");
        assert_eq!(parse_list("10.0.0.10,,10.0.0.11"), vec!["10.0.0.10", "10.0.0.11"]);
        let g = parse_bool_map("A=true,B=false").unwrap();
        assert!(g["A"] && !g["B"]);
        assert!(parse_bool_map("A=maybe").is_err());
        let mut h = BTreeMap::new();
        parse_colon_multimap("a:hello,b:again", &mut h).unwrap();
        parse_colon_multimap("b:beautiful", &mut h).unwrap();
        assert_eq!(h["b"], vec!["again", "beautiful"]);
    }

    #[test]
    fn taints() {
        let t = parse_taints("k=v:NoSchedule,dedicated:NoExecute").unwrap();
        assert_eq!(t[0], Taint { key: "k".into(), value: "v".into(), effect: "NoSchedule".into(), time_added: None });
        assert_eq!(t[1].key, "dedicated");
        assert_eq!(t[1].value, "");
        assert!(parse_taints("k=v").is_err());
        assert!(parse_taints("k=v:Sometimes").unwrap_err().contains("unsupported taint effect"));
    }

    #[test]
    fn reserved_memory_and_vmodule() {
        let r = parse_reserved_memory("0:memory=1Gi,hugepages-1M=2Gi").unwrap();
        assert_eq!(r.numa_node, 0);
        assert_eq!(r.limits["hugepages-1M"], "2Gi");
        assert_eq!(parse_vmodule("foo*=3").unwrap()[0].verbosity, 3);
    }
}
