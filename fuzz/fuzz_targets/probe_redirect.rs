//! A probe's HTTP redirect: the `Location` header a pod's server answers with becomes the next
//! target. Never panics; a followed target keeps the headers, has a non-empty host, a path that
//! starts with `/`, and a scheme of the URL's own.
#![no_main]

use kubelet::probe::http::{HttpTarget, redirect_target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(location) = std::str::from_utf8(data) else { return };
    let from = HttpTarget {
        scheme: "http".into(),
        host: "198.18.0.5".into(),
        port: 8080,
        path: "/healthz".into(),
        headers: vec![("X-A".into(), "b".into())],
    };
    let Some(next) = redirect_target(&from, location) else { return };
    assert_eq!(next.headers, from.headers);
    assert!(!next.host.is_empty(), "empty host from {location:?}");
    if location.starts_with('/') {
        assert_eq!(next.path, location);
        assert_eq!((next.host.as_str(), next.port), ("198.18.0.5", 8080));
    } else {
        assert!(next.path.starts_with('/'), "path {:?} from {location:?}", next.path);
        assert!(next.scheme == "http" || next.scheme == "https");
    }
    let _ = next.url();
});
