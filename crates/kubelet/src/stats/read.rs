//! Reads of the small kernel files the collector samples (cgroupfs, `/proc`), in one or two
//! `read(2)` calls.
//!
//! `std::fs::read_to_string` first asks the file for its size and position (`statx`, `lseek`)
//! to size its buffer. Kernel files do not know their size (they report 0 or 4096), so those
//! two calls are wasted, and the collector reads a few thousand of these files per round.

use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::path::Path;

/// The text of `file` from its current position to its end; `None` on a read error or when it
/// is not UTF-8.
pub fn text(mut file: File) -> Option<String> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The text of the file at `path`, as [`text`].
pub fn text_at(path: &Path) -> Option<String> {
    text(File::open(path).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_and_multi_chunk_files_whole() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "42\n").unwrap();
        assert_eq!(text_at(&small).as_deref(), Some("42\n"));
        let big = dir.path().join("big");
        let body = "total_rss 1\n".repeat(1000);
        std::fs::write(&big, &body).unwrap();
        assert_eq!(text_at(&big), Some(body));
        assert_eq!(text_at(&dir.path().join("missing")), None);
        std::fs::write(&small, [0xff, 0xfe]).unwrap();
        assert_eq!(text_at(&small), None, "not UTF-8");
    }
}
