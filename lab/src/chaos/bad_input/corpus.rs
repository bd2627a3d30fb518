//! The corpus under `tests/corpus/bad-input/` (see its README): its files, `expected.yaml` (the text each
//! rejection must contain), and the run of every event and policy file through the parsers.

use super::extremes::{generated_events, generated_policies};
use super::judge::{Expect, Outcome, Tally, guarded, judge_event, judge_policy};
use super::{BIG_STACK, BadInputError, Figures, LAMBDA_STACK, corpus_dir, on_stack};
use autopilot_functions::Function;
use autopilot_shared::events;
use autopilot_shared::policy::{Policy, PolicyError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Feeds every corpus file (and the huge and deep inputs built at run time) to the event and policy parsers:
/// each must be rejected as `InvalidInput` with the text `expected.yaml` gives. `root` is the workspace root
/// (see [`super::workspace_root`]). Fails only when the corpus cannot be read; what the parsers did is in the figures.
pub fn run_corpus(root: &Path) -> Result<Figures, BadInputError> {
    let started = Instant::now();
    let dir = corpus_dir(root);
    let mut expected = expectations(&dir)?;
    let event_files = corpus_files(&dir, "events", &["json", "bin"])?;
    let policy_files = corpus_files(&dir, "policies", &["yaml"])?;
    if event_files.is_empty() || policy_files.is_empty() {
        return Err(BadInputError::NoCorpus { dir });
    }
    let mut figures = Figures::default();
    let mut handler_files = Vec::new();
    for (folder, _) in handler_folders(&dir)? {
        handler_files.extend(corpus_files(&dir.join("handlers"), &folder, &["json"])?);
    }
    // Every file has its entry, every entry its file.
    let names = event_files.iter().chain(&policy_files).map(|(name, _)| name.clone());
    for name in names.chain(handler_files.iter().map(|(name, _)| format!("handlers/{name}"))) {
        if expected.remove(&name).is_none() {
            figures.corpus_problem(format!("{name}: no entry in expected.yaml"));
        }
    }
    for stale in expected.keys() {
        figures.corpus_problem(format!("expected.yaml names {stale}, which is not in the corpus"));
    }
    let expected = expectations(&dir)?;
    let (events_root, events_expected) = (root.to_path_buf(), expected.clone());
    figures.absorb(on_stack("bad-input-events", BIG_STACK, move || {
        corpus_events(&events_root, &event_files, &events_expected)
    })?);
    figures.absorb(on_stack("bad-input-policies", LAMBDA_STACK, move || corpus_policies(&policy_files, &expected))?);
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// `expected.yaml`: corpus file (relative to the corpus folder) → text its rejection must contain.
pub(super) fn expectations(dir: &Path) -> Result<BTreeMap<String, String>, BadInputError> {
    let path = dir.join("expected.yaml");
    let text = std::fs::read_to_string(&path).map_err(|source| BadInputError::Read { path: path.clone(), source })?;
    serde_yaml_ng::from_str(&text).map_err(|source| BadInputError::Yaml { path, source })
}

/// The files of `dir/folder` with one of `extensions`, sorted, as (`<folder>/<name>`, path).
pub(super) fn corpus_files(
    dir: &Path,
    folder: &str,
    extensions: &[&str],
) -> Result<Vec<(String, PathBuf)>, BadInputError> {
    let path = dir.join(folder);
    let entries = std::fs::read_dir(&path).map_err(|source| BadInputError::Read { path, source })?;
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            Some((format!("{folder}/{name}"), path))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn corpus_events(root: &Path, files: &[(String, PathBuf)], expected: &BTreeMap<String, String>) -> Figures {
    let mut figures = Figures::default();
    for (name, path) in files {
        figures.corpus_files += 1;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                figures.corpus_problem(format!("{name}: {error}"));
                continue;
            }
        };
        let outcome = guarded(|| events::parse_slice(&bytes));
        let expect = Expect::Reject(expected.get(name).map(String::as_str));
        judge_event(&mut figures, name, outcome, expect, Tally::Events);
    }
    generated_events(root, &mut figures);
    figures
}

fn corpus_policies(files: &[(String, PathBuf)], expected: &BTreeMap<String, String>) -> Figures {
    let mut figures = Figures::default();
    for (name, path) in files {
        figures.corpus_files += 1;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                figures.corpus_problem(format!("{name}: {error}"));
                continue;
            }
        };
        let expect = Expect::Reject(expected.get(name).map(String::as_str));
        match String::from_utf8(bytes) {
            Ok(text) => judge_policy(&mut figures, name, guarded(|| Policy::from_yaml(&text)), expect),
            // The tool reads documents as text (`std::fs::read_to_string`): other bytes never reach the parser.
            Err(error) => {
                let problem = autopilot_shared::policy::ValidationError {
                    path: String::new(),
                    reason: format!("not UTF-8: {error}"),
                };
                judge_policy(&mut figures, name, Outcome::Rejected(PolicyError(vec![problem])), expect);
            }
        }
    }
    generated_policies(&mut figures);
    figures
}

/// `handlers/<function>/` folders: (function name, function).
pub(super) fn handler_folders(dir: &Path) -> Result<Vec<(String, Option<Function>)>, BadInputError> {
    let handlers = dir.join("handlers");
    let entries = std::fs::read_dir(&handlers).map_err(|source| BadInputError::Read { path: handlers, source })?;
    let mut folders: Vec<(String, Option<Function>)> = entries
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let function = Function::ALL.into_iter().find(|f| f.name() == name);
            (name, function)
        })
        .collect();
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders)
}
