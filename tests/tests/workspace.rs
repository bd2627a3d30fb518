//! Where the tests find the workspace and its target directory, and the environment of a build a test starts
//! (`scripts/package.sh`, a debug build of one function).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's root folder.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The target directory this test runs from (`<target>/debug/deps/<test>`), so `CARGO_TARGET_DIR` is respected.
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap().to_path_buf()
}

/// Removes from `command` the variables `cargo test` set for this test, so that the build it starts compiles what
/// the check's own build compiled and nothing again: ring's build script reruns when `CARGO_MANIFEST_DIR` changes,
/// and with it every crate above it (the SDK stack, 10 minutes of release build on 2 cores). Kept: `CARGO_HOME`,
/// `CARGO_TARGET_DIR`, and `CARGO_INCREMENTAL`, which is part of what cargo hashes for each workspace crate:
/// `scripts/ci.sh` sets it to 0, and a nested build without it compiled every workspace crate and test binary a
/// second time (measured in a check from a fresh clone: 2.4 GB more under `target/`).
pub(crate) fn without_test_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = name == "CARGO" || name.starts_with("CARGO_") || name == "LD_LIBRARY_PATH";
        if set_for_the_test && !matches!(name.as_ref(), "CARGO_HOME" | "CARGO_TARGET_DIR" | "CARGO_INCREMENTAL") {
            command.env_remove(name.as_ref());
        }
    }
    command
}
