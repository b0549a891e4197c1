//! The in-place resize checkpoints (`allocated_pods_state`, `actuated_pods_state`) as read from
//! the kubelet's root directory: any bytes give entries or an error naming the file, never a
//! panic; entries that parse survive a write and a read back.
#![no_main]

use std::path::Path;

use kubelet::allocation::checkpoint::{parse, save};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/var/lib/kubelet/allocated_pods_state");
    match parse(data, path) {
        Ok(entries) => {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("allocated_pods_state");
            save(&file, &entries).expect("save");
            let again = parse(&std::fs::read(&file).expect("read"), &file).expect("a saved checkpoint reads back");
            assert_eq!(again, entries);
        }
        Err(e) => assert!(e.to_string().contains("allocated_pods_state"), "{e}"),
    }
});
