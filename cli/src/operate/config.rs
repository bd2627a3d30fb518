//! `autopilot config push` and `autopilot config show`: policy versions in the ledger (`CONFIG` / `v<n>`).
//! A document is validated before it is stored, and an unchanged document is not stored again.

use crate::error::CliError;
use autopilot_shared::ledger::Ledger;
use chrono::{DateTime, Utc};
use similar::TextDiff;

/// What `push` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The document is the current version already: nothing stored.
    Unchanged { version: u32 },
    /// Stored as `version`; `diff` is the unified diff against the previous version (all added when first).
    Stored { version: u32, previous: Option<u32>, diff: String },
}

/// Validates `document` (refusing it with every problem listed), then stores it as the next version unless
/// it is identical to the current one.
/// The largest document stored: a DynamoDB item holds 400 KB, keys and attributes included.
const MAX_DOCUMENT_BYTES: usize = 390 * 1024;

pub async fn push(ledger: &Ledger, name: &str, document: &str, now: DateTime<Utc>) -> Result<Pushed, CliError> {
    super::validate::validate(name, document).map_err(|problems| CliError::NotStored(Box::new(problems)))?;
    if document.len() > MAX_DOCUMENT_BYTES {
        let too_large = CliError::TooLarge {
            name: name.to_owned(),
            kb: document.len().div_ceil(1024),
            max_kb: MAX_DOCUMENT_BYTES / 1024,
        };
        return Err(CliError::NotStored(Box::new(too_large)));
    }
    let current = ledger.current_policy_document().await?;
    if let Some((version, stored)) = &current
        && stored == document
    {
        return Ok(Pushed::Unchanged { version: *version });
    }
    let (previous, old) = current.map_or((None, String::new()), |(v, d)| (Some(v), d));
    let old_name = previous.map_or_else(|| "(no version stored)".to_owned(), |v| format!("version {v}"));
    let diff = TextDiff::from_lines(old.as_str(), document)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, name)
        .to_string();
    let version = match ledger.put_policy(document, now).await {
        Err(autopilot_shared::ledger::LedgerError::VersionConflict { .. }) => {
            return Err(CliError::PushedMeanwhile { version: previous.map_or(1, |v| v + 1) });
        }
        stored => stored?,
    };
    Ok(Pushed::Stored { version, previous, diff })
}

/// The current version and its document, exactly as stored.
pub async fn show(ledger: &Ledger) -> Result<Option<(u32, String)>, CliError> {
    Ok(ledger.current_policy_document().await?)
}
