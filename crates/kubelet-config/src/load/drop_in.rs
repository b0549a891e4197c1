//! `--config-dir` drop-in configuration (upstream KEP 3983, GA in 1.35): every `*.conf` file
//! in the directory, in lexical order, is a `KubeletConfiguration` (with `apiVersion` and
//! `kind`) merged over the configuration from `--config` (or the defaults) as a JSON merge
//! patch (RFC 7386: objects merge, lists and scalars replace, `null` removes), as upstream's
//! `mergeKubeletConfigurations`. Command-line flags still win over both.

use std::path::{Path, PathBuf};

use component_config::decode;
use serde_json::Value;

use crate::error::{ConfigError, ConfigWarning, Kubelet, Origin};
use crate::types::KubeletConfiguration;

/// The drop-in files under `dir` (subdirectories too, as upstream's `WalkDir`), in the order
/// they apply: lexical by path.
pub fn drop_in_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| ConfigError::Read { path: d.clone(), source })?;
        for e in entries.flatten() {
            let (path, kind) = (e.path(), e.file_type());
            match kind {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "conf") => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

/// RFC 7386 merge of `patch` into `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in patch {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// `base` with every drop-in of `dir` merged over it; each file is checked on its own first,
/// so an error names the drop-in.
pub fn apply(
    base: KubeletConfiguration,
    base_origin: &Origin,
    dir: &Path,
) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let files = drop_in_files(dir)?;
    if files.is_empty() {
        return Ok((base, Vec::new()));
    }
    let mut merged = serde_json::to_value(&base).map_err(|e| ConfigError::Invalid {
        origin: base_origin.clone(),
        field: String::new(),
        message: e.to_string(),
    })?;
    let mut warnings = Vec::new();
    for file in &files {
        let origin = Origin::File(file.clone());
        let bytes = decode::read_file::<Kubelet>(file)?;
        // Decoded alone for its errors and warnings; merged as written.
        let (_, w) = super::decode(&origin, &bytes)?;
        warnings.extend(w);
        let map = decode::parse_mapping::<Kubelet>(&origin, &bytes)?;
        merge_patch(&mut merged, &Value::Object(map));
    }
    let bytes = serde_json::to_vec(&merged).map_err(|e| ConfigError::Invalid {
        origin: Origin::File(dir.into()),
        field: String::new(),
        message: e.to_string(),
    })?;
    let (cfg, _) = super::decode(&Origin::File(dir.into()), &bytes)?;
    Ok((cfg, warnings))
}
