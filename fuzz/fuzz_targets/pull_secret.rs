//! A pull secret's `.dockerconfigjson` / `.dockercfg` as the API server hands it over, and an
//! image to match: any bytes give a keyring or an error naming the data key, never a panic;
//! looking up any image in a keyring never panics either.
#![no_main]

use std::collections::BTreeMap;

use kubelet::kuberuntime::credentials::{DOCKER_CFG_KEY, DOCKER_CONFIG_JSON_KEY, DockerKeyring, repository};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the image; the rest the secret's data.
    let text = String::from_utf8_lossy(data);
    let (image, secret) = text.split_once('\n').unwrap_or(("busybox", &text));
    let key = if secret.starts_with("{\"auths\"") { DOCKER_CONFIG_JSON_KEY } else { DOCKER_CFG_KEY };
    let mut keyring = DockerKeyring::default();
    match keyring.add_secret(&BTreeMap::from([(key.to_string(), secret.to_string())])) {
        Ok(()) => {
            let _ = keyring.lookup(image);
        }
        Err(e) => assert!(e.to_string().starts_with(".docker"), "{e}"),
    }
    let _ = repository(image);
});
