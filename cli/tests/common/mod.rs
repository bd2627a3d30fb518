//! Test support: `autopilot serve` as a separate process, and the shell it prints.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

/// `autopilot serve <args>` (the binary under test) and the lines it printed before `ready`: comments and
/// `export NAME=value` lines.
pub fn serve(bin: &str, args: &[&std::ffi::OsStr]) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("autopilot serve starts");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == autopilot_sim::READY {
            break;
        }
        lines.push(line);
    }
    (child, lines)
}

/// The `export NAME=value` lines of [`serve`] as pairs.
pub fn exports(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}
