//! Where the test plugins are: scripts/build-plugins.sh (run by
//! scripts/test.sh) builds them into $CARGO_TARGET_DIR/sluice-plugins.

#![allow(dead_code)]

use std::path::PathBuf;

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        // The workspace's own target directory, from whichever member's
        // tests include this file.
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").exists())
            .unwrap_or(std::path::Path::new("."))
            .join("target"),
    }
}

/// A built plugin's path; fails with how to build it when it is missing.
pub fn plugin(file: &str) -> PathBuf {
    let path = target_dir().join("sluice-plugins").join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does) with the same CARGO_TARGET_DIR",
        path.display()
    );
    path
}

/// A compiled-plugin cache shared by test runs, so the Python component
/// compiles once rather than in every test.
pub fn cache_dir() -> PathBuf {
    let dir = target_dir().join("sluice-plugin-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
