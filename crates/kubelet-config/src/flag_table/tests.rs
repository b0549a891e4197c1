//! Checks on the table as a whole: no flag is listed twice, and the order
//! `--help` shows.

use std::collections::BTreeSet;

use super::{REMOVED_FLAGS, config_flags};

#[test]
fn every_flag_is_listed_once() {
    let mut seen = BTreeSet::new();
    for f in config_flags() {
        assert!(seen.insert(f.name), "--{} listed twice", f.name);
    }
    for (name, _, _) in REMOVED_FLAGS {
        assert!(seen.insert(name), "--{name} both current and removed");
    }
}

#[test]
fn help_order_is_by_name_then_vmodule() {
    let names: Vec<&str> = config_flags().iter().map(|f| f.name).collect();
    assert_eq!(names.last(), Some(&"vmodule"));
    let rest = &names[..names.len() - 1];
    assert!(rest.windows(2).all(|w| w[0] < w[1]), "{rest:?}");
}
