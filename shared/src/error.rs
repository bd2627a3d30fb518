//! Error classification at the Lambda boundary. Every layer has its own `thiserror` enum; each maps to one
//! stable [`ErrorClass`], which becomes the `errorType` Lambda reports, so retries, the on-failure destination
//! and alarms behave predictably: `Retryable` errors are worth another attempt, `NonRetryable` and
//! `InvalidInput` go straight to the dead-letter path.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;
use serde::Serialize;

/// The stable classes an invocation error falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorClass {
    /// Transient: throttling, timeouts, 5xx, a busy lease, an idempotency record in progress.
    Retryable,
    /// Permanent but not the caller's fault: a missing resource, a refused state transition, a payload mismatch.
    NonRetryable,
    /// The event or command itself is wrong: it does not parse or fails validation.
    InvalidInput,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "Retryable",
            ErrorClass::NonRetryable => "NonRetryable",
            ErrorClass::InvalidInput => "InvalidInput",
        }
    }
}

/// Anything that knows which class it belongs to.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// The error a handler returns to the runtime: a class and a message that says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class:?}: {message}")]
pub struct AutopilotError {
    pub class: ErrorClass,
    pub message: String,
}

impl AutopilotError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self { class, message: message.into() }
    }

    pub fn invalid_input(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorClass::InvalidInput, message.to_string())
    }

    pub fn retryable(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorClass::Retryable, message.to_string())
    }

    pub fn non_retryable(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorClass::NonRetryable, message.to_string())
    }

    /// Wraps any classified error, keeping its full message chain.
    pub fn from_classified<E: Classify + std::error::Error>(error: &E) -> Self {
        Self::new(error.class(), message_chain(error))
    }
}

/// An error's message followed by those of its sources, `: `-separated (SDK errors say little on their own). A
/// service's error metadata, which displays as a debug dump, is put as `Code: message`, and ends the chain.
pub fn message_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        if let Some(meta) = cause.downcast_ref::<aws_smithy_types::error::ErrorMetadata>() {
            message.push_str(&format!("{}: {}", meta.code().unwrap_or("Unknown"), meta.message().unwrap_or_default()));
            break;
        }
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl Classify for AutopilotError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

impl From<AutopilotError> for Diagnostic {
    fn from(error: AutopilotError) -> Self {
        Diagnostic { error_type: error.class.as_str().to_owned(), error_message: error.message }
    }
}

/// An AWS SDK error in words: `Code: message` for a service error, the error itself otherwise.
pub fn sdk_error_message<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error.as_service_error() {
        Some(service) => format!("{}: {}", service.code().unwrap_or("Unknown"), service.message().unwrap_or_default()),
        // A transport failure (connection refused, timeout, a request that could not be built): its chain of
        // causes, as the SDK words them, not the error's Debug dump.
        None => aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
    }
}

/// The error codes AWS services answer throttling with (WorkSpaces, AppStream and Thin Client use the first three;
/// the query protocols `Throttling`).
pub const THROTTLING_CODES: [&str; 4] =
    ["ThrottlingException", "RequestLimitExceededException", "TooManyRequestsException", "Throttling"];

/// Whether an error code is a throttling error (not a quota: AppStream's `LimitExceededException` is a quota).
pub fn is_throttling(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// The class of an AWS SDK error (after the SDK's own retries): throttling, internal and unavailable service
/// errors and every transport failure (timeout, dispatch, response) are worth another attempt; other service
/// errors are not.
pub fn sdk_error_class<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> ErrorClass {
    match error.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or_default();
            if ["Throttl", "LimitExceeded", "Internal", "Unavailable"].iter().any(|hint| code.contains(hint)) {
                ErrorClass::Retryable
            } else {
                ErrorClass::NonRetryable
            }
        }
        None => ErrorClass::Retryable,
    }
}

/// An observe step's failure: what was being read, the service's words, the class, and whether the service
/// throttled the read (past the SDK's retries: a reason to wait, not a failure).
#[derive(Debug, thiserror::Error)]
#[error("observing {what} failed: {message}")]
pub struct ObserveError {
    pub what: String,
    pub message: String,
    pub class: ErrorClass,
    pub throttled: bool,
}

impl Classify for ObserveError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

impl ObserveError {
    /// An SDK error met while reading `what`.
    pub fn sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        what: &str,
        error: &SdkError<E, R>,
    ) -> Self {
        let throttled = error.as_service_error().and_then(ProvideErrorMetadata::code).is_some_and(is_throttling);
        ObserveError {
            what: what.to_owned(),
            message: sdk_error_message(error),
            class: sdk_error_class(error),
            throttled,
        }
    }
}

/// AppStream resource errors (`ImageBuilderErrors`, `ImageErrors`) as `CODE: message` lines.
pub fn appstream_resource_errors(errors: &[aws_sdk_appstream::types::ResourceError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            format!("{}: {}", e.error_code().map_or("Unknown", |c| c.as_str()), e.error_message().unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    impl Classify for Outer {
        fn class(&self) -> ErrorClass {
            ErrorClass::Retryable
        }
    }

    #[test]
    fn a_services_error_metadata_is_put_in_words_not_dumped() {
        let meta =
            aws_smithy_types::error::ErrorMetadata::builder().code("AccessDenied").message("not allowed").build();
        #[derive(Debug, thiserror::Error)]
        #[error("unhandled error (AccessDenied)")]
        struct Unhandled(#[source] aws_smithy_types::error::ErrorMetadata);
        let chain = message_chain(&Unhandled(meta));
        assert_eq!(chain, "unhandled error (AccessDenied): AccessDenied: not allowed");
    }

    #[test]
    fn diagnostic_carries_the_stable_error_type() {
        for (error, expected) in [
            (AutopilotError::invalid_input("detail.imageName: missing field"), "InvalidInput"),
            (AutopilotError::retryable("throttled"), "Retryable"),
            (AutopilotError::non_retryable("pool not found"), "NonRetryable"),
        ] {
            let message = error.message.clone();
            let diagnostic = Diagnostic::from(error);
            assert_eq!(diagnostic.error_type, expected);
            assert_eq!(diagnostic.error_message, message);
        }
    }

    #[test]
    fn classified_errors_keep_their_cause_chain() {
        let error = Outer(std::io::Error::other("connection reset"));
        let wrapped = AutopilotError::from_classified(&error);
        assert_eq!(wrapped.class, ErrorClass::Retryable);
        assert_eq!(wrapped.message, "outer: connection reset");
    }
}
