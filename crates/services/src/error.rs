//! Service errors by cause; each wire layer (HTTP status, stanza error) maps them in one place.
use iris_store::StoreError;

/// Why a service call failed. The `Display` text is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; `field` names what is wrong.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// No valid credentials or token were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// Login and password do not match (deliberately not saying which is wrong).
    #[error("wrong login or password")]
    InvalidCredentials,
    /// Too many failed attempts: try again after this many seconds.
    #[error("too many failed attempts, retry in {retry_after_secs} s")]
    Locked { retry_after_secs: u64 },
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The named thing already exists or the request conflicts with current state.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// Too much work queued (password hashing): try again shortly. Not a failed attempt.
    #[error("server busy, try again shortly")]
    Busy,
    /// The database is unreachable or failed; the detail is logged, not shown.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Error::Conflict(what),
            StoreError::Corrupt(detail) => Error::Internal(detail),
            other => Error::Unavailable(other),
        }
    }
}
