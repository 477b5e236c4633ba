//! What can go wrong in the service, sorted by who must act.

use vrs_domain::csv::FileError;

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An error from a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller may not do this (or not to this municipality).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Something the caller named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// An uploaded file cannot be read at all.
    #[error("{0}")]
    File(#[from] FileError),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(String),
    #[error("stored data is not in the expected form: {0}")]
    Corrupt(String),
    #[error("encryption failed (wrong key, or damaged data)")]
    Crypto,
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
    /// The マイナンバー vault's writer thread stopped or failed (the service's fault).
    #[error("vault: {0}")]
    VaultWriter(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the caller's input is at fault (a 4xx), rather than the service (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            StoreError::Forbidden(_)
                | StoreError::NotFound(_)
                | StoreError::Invalid(_)
                | StoreError::File(_)
        )
    }
}
