//! The command line a systemd service unit (and its drop-ins) gives, worked out as systemd works
//! it out: `Environment=` assignments, then `EnvironmentFile=` files over them (a leading `-`
//! makes a file optional), the last `ExecStart=` after an empty one resets the list, `$VAR` as
//! a whole word splits into words and `${VAR}` substitutes in place. `knode join` uses it to
//! start the kubelet from the shipped units where systemd does not run, so both ways run the
//! same command.

/// Why a unit's command line could not be worked out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnitError {
    /// No `ExecStart=` is left once the unit and its drop-ins are read.
    #[error("the unit has no ExecStart= in [Service]")]
    NoExecStart,
    /// A required (not `-`-prefixed) `EnvironmentFile=` is missing; its path.
    #[error("EnvironmentFile={0} does not exist (prefix it with '-' to make it optional)")]
    MissingEnvironmentFile(String),
    /// A quote is not closed; the text being split.
    #[error("unterminated quote in {0:?}")]
    Quote(String),
}

/// Splits `text` into words: whitespace separates, double or single quotes group, a backslash
/// escapes the next character.
fn words(text: &str) -> Result<Vec<String>, UnitError> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(UnitError::Quote(text.into()));
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// `KEY=VALUE` lines of an environment file (comments `#`/`;`, quoted values).
pub fn parse_environment_file(text: &str) -> Result<Vec<(String, String)>, UnitError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(e)) if q == e && value.len() >= 2 => value[1..value.len() - 1].to_owned(),
            _ => value.to_owned(),
        };
        out.push((key.trim().to_owned(), value));
    }
    Ok(out)
}

fn expand(word: &str, env: &std::collections::HashMap<String, String>, out: &mut Vec<String>) {
    if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{') && n.chars().all(|c| c.is_alphanumeric() || c == '_')) {
        out.extend(env.get(name).map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).unwrap_or_default());
        return;
    }
    let mut result = String::new();
    let mut rest = word;
    while let Some(at) = rest.find("${") {
        result.push_str(&rest[..at]);
        match rest[at + 2..].find('}') {
            Some(end) => {
                result.push_str(env.get(&rest[at + 2..at + 2 + end]).map_or("", String::as_str));
                rest = &rest[at + 3 + end..];
            }
            None => {
                result.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    result.push_str(rest);
    out.push(result);
}

/// Lines with systemd's continuations joined: a line ending in `\` goes on in the next one.
fn logical_lines(unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in unit.lines() {
        let mut current = pending.take().unwrap_or_default();
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
                pending = Some(current);
            }
            None => {
                current.push_str(line);
                out.push(current);
            }
        }
    }
    out.extend(pending);
    out
}

/// The `ExecStart=` command of `units` (the unit, then its drop-ins in order), with
/// `read_file(path)` giving an environment file's text (`None`: it does not exist).
pub fn exec_start(units: &[&str], read_file: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, UnitError> {
    let mut env = std::collections::HashMap::new();
    let mut files = Vec::new();
    let mut exec: Option<String> = None;
    for unit in units {
        let mut in_service = false;
        for line in logical_lines(unit) {
            let line = line.trim();
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            if !in_service || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim();
            match key.trim() {
                "Environment" => {
                    for assignment in words(value)? {
                        if let Some((k, v)) = assignment.split_once('=') {
                            env.insert(k.to_owned(), v.to_owned());
                        }
                    }
                }
                "EnvironmentFile" => files.push(value.to_owned()),
                "ExecStart" if value.is_empty() => exec = None,
                "ExecStart" => exec = Some(value.trim_start_matches(['-', '@', '+', '!', ':']).to_owned()),
                _ => {}
            }
        }
    }
    for file in files {
        let (optional, path) = match file.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, file.as_str()),
        };
        match read_file(path) {
            Some(text) => env.extend(parse_environment_file(&text)?),
            None if optional => {}
            None => return Err(UnitError::MissingEnvironmentFile(path.into())),
        }
    }
    let exec = exec.ok_or(UnitError::NoExecStart)?;
    let mut argv = Vec::new();
    for word in words(&exec)? {
        expand(&word, &env, &mut argv);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{KUBE_PROXY_SERVICE, KUBEADM_DROP_IN, KUBELET_SERVICE};

    #[test]
    fn the_shipped_kubelet_units_give_kubeadm_s_command_line() {
        let files = |path: &str| match path {
            "/var/lib/kubelet/kubeadm-flags.env" => {
                Some("KUBELET_KUBEADM_ARGS=\"--node-ip=198.18.0.5 --hostname-override=n1\"\n".to_owned())
            }
            "/etc/default/kubelet" => Some("# extra\nKUBELET_EXTRA_ARGS='--v=2 --max-pods=50'\n".to_owned()),
            _ => None,
        };
        let argv = exec_start(&[KUBELET_SERVICE, KUBEADM_DROP_IN], files).unwrap();
        assert_eq!(
            argv,
            [
                "/usr/bin/kubelet",
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--config=/var/lib/kubelet/config.yaml",
                "--node-ip=198.18.0.5",
                "--hostname-override=n1",
                "--v=2",
                "--max-pods=50",
            ]
        );
        // Without the drop-in: the bare binary.
        assert_eq!(exec_start(&[KUBELET_SERVICE], |_| None).unwrap(), ["/usr/bin/kubelet"]);
        assert_eq!(
            exec_start(&[KUBE_PROXY_SERVICE], |_| None).unwrap(),
            ["/usr/bin/kube-proxy", "--config=/var/lib/kube-proxy/kube-proxy-config.yaml"]
        );
    }

    #[test]
    fn expansion_quoting_and_errors_follow_systemd() {
        let unit = "[Service]\nEnvironment=\"A=x y\" B=z\nEnvironmentFile=/etc/must\nExecStart=/bin/c $A ${B}-s \"q w\" $UNSET\n";
        assert_eq!(exec_start(&[unit], |_| Some("B=file\n".into())).unwrap(), ["/bin/c", "x", "y", "file-s", "q w"]);
        assert_eq!(exec_start(&[unit], |_| None), Err(UnitError::MissingEnvironmentFile("/etc/must".into())));
        assert_eq!(exec_start(&["[Service]\nExecStart=/a\nExecStart=\n"], |_| None), Err(UnitError::NoExecStart));
        assert_eq!(exec_start(&["[Unit]\nExecStart=/a\n"], |_| None), Err(UnitError::NoExecStart));
        assert!(matches!(exec_start(&["[Service]\nExecStart=/a \"open\n"], |_| None), Err(UnitError::Quote(_))));
        // Continuation lines, as the seed notes' units write them.
        let continued = "[Service]\nExecStart=/opt/bin/kubelet \\\n  --v=2 \\\n  --allowed-unsafe-sysctls=\"net.*\"\nRestart=on-failure\n";
        assert_eq!(exec_start(&[continued], |_| None).unwrap(), ["/opt/bin/kubelet", "--v=2", "--allowed-unsafe-sysctls=net.*"]);
    }
}
