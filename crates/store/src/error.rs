use uuid::Uuid;

/// What can go wrong in the store. Messages say what happened and, where a person can
/// act on it, what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: Uuid },

    #[error("{0}")]
    Config(String),

    /// A record clashes with one already stored (an email already in use).
    #[error("{0}")]
    Conflict(String),

    #[error("cannot connect to the database: {0}")]
    Connect(String),

    #[error("database migration {version} ({name}) failed: {reason}")]
    Migration { version: i64, name: &'static str, reason: String },

    #[error("the database holds a record Kith cannot read ({what} {id}): {reason}")]
    Corrupt { what: &'static str, id: String, reason: String },

    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message ("duplicate key value ...") is the useful part.
        match e.as_db_error() {
            Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Database(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Connect(e.to_string())
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Database(format!("a database task stopped unexpectedly: {e}"))
    }
}
