//! The storage layer's failures.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL cannot be used: the message names what to fix.
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Migrations are missing: the database is older than this binary.
    #[error(
        "the database schema is behind this binary: pending migrations {0:?}; run `zonerank migrate`"
    )]
    SchemaBehind(Vec<String>),
    /// The database has migrations this binary does not know: it is newer than this binary.
    #[error("the database schema is newer than this binary ({0}); upgrade zonerank")]
    SchemaUnknown(String),
    /// A row stored in the database does not parse (written by hand or by a newer version).
    #[error("corrupt stored row: {0}")]
    Corrupt(String),
    /// A page token that this store did not hand out.
    #[error("invalid page token")]
    InvalidPageToken,
}
