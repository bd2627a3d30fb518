//! The ledger: EUC Autopilot's bookkeeping in one DynamoDB table, through `aws-sdk-dynamodb`.
//!
//! - [`keys`]: the key schema, defined once;
//! - [`table`]: the table definition and a function that creates it;
//! - [`idempotency`]: exactly-once side effects (Powertools semantics);
//! - [`lease`]: one worker per scope, with fencing tokens;
//! - [`state`]: versioned resource state (optimistic concurrency, optionally fenced);
//! - [`audit`]: append-only decision records, by day and by resource;
//! - [`config`]: policy document versions;
//! - [`tags`]: the tag cache (`TAGS#<kind>`), invalidated by tag-change events.
//!
//! Items are converted with `serde_dynamo`; the only hand-built attribute values are the small expression
//! values next to the expressions that use them.

pub mod audit;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod idempotency;
pub mod keys;
pub mod lease;
pub mod shards;
pub mod state;
pub mod table;
pub mod tags;

use crate::error::{Classify, ErrorClass};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub use keys::Key;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Handle on the ledger table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: Client,
    table: String,
    /// Whose work items this handle reads and writes (see [`keys::WorkScope`]).
    scope: keys::WorkScope,
    /// The last policy document read and its parse, shared by clones: a warm invocation whose stored document
    /// has not changed does not parse it again.
    parsed_policy: std::sync::Arc<std::sync::Mutex<Option<(String, crate::policy::Policy)>>>,
}

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger table is unavailable ({operation}): {message}")]
    Unavailable { operation: &'static str, message: String },
    /// The caller may not make this request (`AccessDeniedException`, `UnrecognizedClientException`): only a change
    /// of its IAM policy (or of the table it names: a role is granted its stack's table only) helps.
    #[error(
        "access to the ledger was refused ({operation}): {message}; check the table name, and that the caller's IAM policy grants the action on it (a function's role in template.yaml; an operator: the stack's OperatorPolicyArn)"
    )]
    AccessDenied { operation: &'static str, message: String },
    /// The table does not exist (`ResourceNotFoundException`): a wrong name, or another account or region.
    #[error(
        "the ledger table was not found ({operation}): {message}; check the table name (the stack's LedgerTableName output; --table or AUTOPILOT_TABLE), the account and the region"
    )]
    NoTable { operation: &'static str, message: String },
    /// DynamoDB refused the request itself (`ValidationException`): retrying the same request cannot help.
    #[error("the ledger refused the request ({operation}): {message}")]
    Refused { operation: &'static str, message: String },
    #[error("idempotency record for {business_key:?} is in progress until {in_progress_until_ms} ms")]
    InProgress { business_key: String, in_progress_until_ms: i64 },
    #[error(
        "idempotency key {business_key:?} was seen before with a different payload (stored hash {stored}, this one {received})"
    )]
    PayloadMismatch { business_key: String, stored: String, received: String },
    #[error("idempotency record for {business_key:?} was taken over by another invocation")]
    IdempotencyLost { business_key: String },
    #[error("lease {scope:?} is held by {holder:?} until {until_ms} ms")]
    LeaseHeld { scope: String, holder: String, until_ms: i64 },
    #[error("lease {scope:?} with token {token} is no longer held by this worker")]
    LeaseLost { scope: String, token: u64 },
    #[error("write rejected: fencing token {token} for {scope:?} is stale or its lease expired")]
    FencingRejected { scope: String, token: u64 },
    #[error("version conflict on {key}: expected version {expected:?}, found {found:?}")]
    VersionConflict { key: String, expected: Option<u64>, found: Option<u64> },
    #[error("ledger item {key} could not be read: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    InvalidPolicy(#[from] crate::policy::PolicyError),
    /// The stored version this build refuses (stored by a newer build, or written around `config push`).
    #[error("stored policy version {version}: {error}; push a corrected one (autopilot config push)")]
    InvalidStoredPolicy { version: u32, error: crate::policy::PolicyError },
}

impl Classify for LedgerError {
    fn class(&self) -> ErrorClass {
        match self {
            // A lost lease, a rejected fence or a claim taken over: another invocation took over; the event is
            // delivered again and finds the work done (or does what is left), so it must not go to the
            // dead-letter queue.
            LedgerError::Unavailable { .. }
            | LedgerError::InProgress { .. }
            | LedgerError::LeaseHeld { .. }
            | LedgerError::LeaseLost { .. }
            | LedgerError::FencingRejected { .. }
            | LedgerError::IdempotencyLost { .. }
            | LedgerError::VersionConflict { .. } => ErrorClass::Retryable,
            LedgerError::PayloadMismatch { .. }
            | LedgerError::InvalidPolicy(_)
            | LedgerError::InvalidStoredPolicy { .. } => ErrorClass::InvalidInput,
            LedgerError::Refused { .. }
            | LedgerError::AccessDenied { .. }
            | LedgerError::NoTable { .. }
            | LedgerError::Corrupt { .. } => ErrorClass::NonRetryable,
        }
    }
}

impl LedgerError {
    /// An SDK error of a DynamoDB request, in the ledger's words (with the fix where one helps).
    pub fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        operation: &'static str,
        error: &SdkError<E, R>,
    ) -> Self {
        let message = crate::error::sdk_error_message(error);
        match error.as_service_error().and_then(ProvideErrorMetadata::code) {
            Some("ValidationException") => LedgerError::Refused { operation, message },
            Some("AccessDeniedException" | "UnrecognizedClientException") => {
                LedgerError::AccessDenied { operation, message }
            }
            Some("ResourceNotFoundException") => LedgerError::NoTable { operation, message },
            _ => LedgerError::Unavailable { operation, message },
        }
    }

    fn corrupt(key: &Key, error: impl std::fmt::Display) -> Self {
        LedgerError::Corrupt { key: format!("{}/{}", key.pk, key.sk), message: error.to_string() }
    }
}

/// Whether an SDK error is DynamoDB's `ConditionalCheckFailedException`.
fn is_condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key_item(key: &Key) -> Item {
    HashMap::from([(keys::PK.to_owned(), s(&key.pk)), (keys::SK.to_owned(), s(&key.sk))])
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

impl Ledger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), scope: keys::WorkScope::Home, parsed_policy: Default::default() }
    }

    /// This ledger with the work items of `place`, for a hub in `home` (the same handle for the home place).
    pub fn for_place(&self, place: &crate::resource::Place, home: &crate::resource::Place) -> Self {
        Self { scope: keys::WorkScope::of(place, home), ..self.clone() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
