//! Service errors as the real services send them: a code that the SDK maps to a typed error, a message, the
//! HTTP status, and for throttling the retry hint.

/// An error answer of a simulated operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
    /// Thin Client `ThrottlingException` carries `retryAfterSeconds` (header `Retry-After`).
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), status, retry_after_seconds: None }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 400, message)
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, 400, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServerException", 500, message)
    }
}

pub type ApiResult = Result<serde_json::Value, ApiError>;
