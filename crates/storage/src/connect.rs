//! Opening the database named by a URL, with failures an operator can act on: which schemes
//! are accepted, which host and port did not answer, which role or database is missing, which
//! SQLite path cannot be opened and why.

use std::{path::Path, str::FromStr, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr,
    sqlx::{self, postgres::PgConnectOptions},
};

use crate::StorageError;

/// How long the first PostgreSQL connection may take. The driver retries a refused connection
/// until its pool deadline (30 s by default); at startup a quick, named failure helps more.
const FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(4);

/// How long the follow-up TCP probe that names the reason may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The URL schemes `Store::connect` accepts, as operators read them.
const ACCEPTED: &str = "postgres:// or postgresql:// (PostgreSQL), sqlite: (SQLite) or a plain \
                        file path (SQLite, created if missing)";

/// Why the database cannot be opened; each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL's scheme is none of those accepted.
    #[error("unknown database URL scheme `{scheme}://`: use {ACCEPTED}")]
    UnknownScheme { scheme: String },
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {reason}")]
    InvalidUrl { reason: String },
    /// Nothing answered at the server's address, or it did not finish the handshake in time.
    #[error("cannot reach PostgreSQL at {host}:{port}: {reason}")]
    Unreachable {
        host: String,
        port: u16,
        reason: String,
    },
    /// SQLSTATE 28000: the role does not exist or may not log in from here.
    #[error(
        "PostgreSQL at {host}:{port} does not let role `{role}` in ({detail}): create the role or fix the user in the database URL"
    )]
    RoleRejected {
        host: String,
        port: u16,
        role: String,
        detail: String,
    },
    /// SQLSTATE 28P01: wrong password.
    #[error(
        "PostgreSQL at {host}:{port} rejected the password of role `{role}`: fix the password in the database URL"
    )]
    PasswordRejected {
        host: String,
        port: u16,
        role: String,
    },
    /// SQLSTATE 3D000: the database does not exist.
    #[error(
        "PostgreSQL at {host}:{port} has no database `{database}`: create it (createdb {database}) or fix the database name in the URL"
    )]
    NoSuchDatabase {
        host: String,
        port: u16,
        database: String,
    },
    /// The SQLite file cannot be opened or created.
    #[error("cannot open the SQLite database {path}: {reason}")]
    Sqlite { path: String, reason: String },
}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Postgres(String),
    /// The sqlx URL and the file's path (None for an in-memory database).
    Sqlite(String, Option<String>),
}

/// Sorts `url` into PostgreSQL or SQLite; a bare path is a SQLite file, created if missing.
fn target(url: &str) -> Result<Target, ConnectError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_string()));
    }
    if !url.starts_with("sqlite:")
        && let Some((scheme, _)) = url.split_once("://")
    {
        return Err(ConnectError::UnknownScheme {
            scheme: scheme.to_string(),
        });
    }
    let url = if url.starts_with("sqlite:") {
        url.to_string()
    } else {
        format!("sqlite://{url}")
    };
    let url = if url.contains("mode=") || url.contains(":memory:") {
        url
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(&url);
    let path = rest.split('?').next().unwrap_or(rest);
    let path = (!path.is_empty() && path != ":memory:").then(|| path.to_string());
    Ok(Target::Sqlite(url, path))
}

/// Opens the database `url` names with `configure`'s pool settings.
pub(crate) async fn open(
    url: &str,
    configure: impl FnOnce(&mut ConnectOptions, bool),
) -> Result<DatabaseConnection, StorageError> {
    match target(url)? {
        Target::Postgres(url) => {
            let server =
                PgConnectOptions::from_str(&url).map_err(|e| ConnectError::InvalidUrl {
                    reason: e.to_string(),
                })?;
            let mut options = ConnectOptions::new(url);
            configure(&mut options, false);
            match tokio::time::timeout(FIRST_CONNECTION_TIMEOUT, Database::connect(options)).await {
                Ok(Ok(db)) => Ok(db),
                Ok(Err(e)) => Err(postgres_failure(&server, e).await),
                Err(_) => Err(unreachable(&server, None).await.into()),
            }
        }
        Target::Sqlite(url, path) => {
            let mut options = ConnectOptions::new(url);
            configure(&mut options, true);
            Database::connect(options).await.map_err(|e| match path {
                Some(path) => ConnectError::Sqlite {
                    reason: sqlite_reason(Path::new(&path), &e),
                    path,
                }
                .into(),
                None => StorageError::Database(e),
            })
        }
    }
}

/// The driver's error when it is a database's answer with a SQLSTATE.
fn sqlstate(e: &DbErr) -> Option<(String, String)> {
    let DbErr::Conn(RuntimeErr::SqlxError(inner)) = e else {
        return None;
    };
    let database = inner.as_database_error()?;
    Some((
        database.code()?.into_owned(),
        database.message().to_string(),
    ))
}

/// Maps a first-connection failure by SQLSTATE (never by message text) or by I/O error.
async fn postgres_failure(server: &PgConnectOptions, e: DbErr) -> StorageError {
    let host = server.get_host().to_string();
    let port = server.get_port();
    let role = server.get_username().to_string();
    if let Some((code, detail)) = sqlstate(&e) {
        match code.as_str() {
            "28000" => {
                return ConnectError::RoleRejected {
                    host,
                    port,
                    role,
                    detail,
                }
                .into();
            }
            "28P01" => return ConnectError::PasswordRejected { host, port, role }.into(),
            "3D000" => {
                let database = server.get_database().unwrap_or(&role).to_string();
                return ConnectError::NoSuchDatabase {
                    host,
                    port,
                    database,
                }
                .into();
            }
            _ => {}
        }
    }
    match &e {
        DbErr::Conn(RuntimeErr::SqlxError(inner)) => match inner.as_ref() {
            sqlx::Error::Io(io) => unreachable(server, Some(io.to_string())).await.into(),
            sqlx::Error::PoolTimedOut => unreachable(server, None).await.into(),
            _ => StorageError::Database(e),
        },
        _ => StorageError::Database(e),
    }
}

/// The server did not answer: says why, probing its address once when the driver did not.
async fn unreachable(server: &PgConnectOptions, reason: Option<String>) -> ConnectError {
    let host = server.get_host().to_string();
    let port = server.get_port();
    let reason = match reason {
        Some(reason) => reason,
        None => {
            let probe = tokio::net::TcpStream::connect((host.as_str(), port));
            match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                Ok(Err(e)) => format!("{e}; is the server running and the address right?"),
                Err(_) => "no answer; is the address right and the port open?".to_string(),
                Ok(Ok(_)) => format!(
                    "the port accepts connections but no PostgreSQL session started within {} s",
                    FIRST_CONNECTION_TIMEOUT.as_secs()
                ),
            }
        }
    };
    ConnectError::Unreachable { host, port, reason }
}

/// Why SQLite could not open `path`, from the file system where it can tell.
fn sqlite_reason(path: &Path, e: &DbErr) -> String {
    if path.is_dir() {
        return "it is a directory".to_string();
    }
    if !path.exists() {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        match std::fs::metadata(parent) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return format!("the directory {} does not exist", parent.display());
            }
            Ok(meta) if !meta.is_dir() => {
                return format!("{} is not a directory", parent.display());
            }
            Ok(meta) if meta.permissions().readonly() => {
                return format!("the directory {} is not writable", parent.display());
            }
            _ => {}
        }
    } else if let Err(io) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        return io.to_string();
    }
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(inner)) => match inner.as_database_error() {
            Some(database) => database.message().to_string(),
            None => inner.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, target};

    #[test]
    fn bare_paths_become_sqlite_urls_created_on_first_use() {
        assert_eq!(
            target("data/zr.db").unwrap(),
            Target::Sqlite(
                "sqlite://data/zr.db?mode=rwc".into(),
                Some("data/zr.db".into())
            )
        );
        assert_eq!(
            target("sqlite://zr.db?cache=shared").unwrap(),
            Target::Sqlite(
                "sqlite://zr.db?cache=shared&mode=rwc".into(),
                Some("zr.db".into())
            )
        );
        assert_eq!(
            target("sqlite://a.db?mode=ro").unwrap(),
            Target::Sqlite("sqlite://a.db?mode=ro".into(), Some("a.db".into()))
        );
        assert_eq!(
            target("sqlite::memory:").unwrap(),
            Target::Sqlite("sqlite::memory:".into(), None)
        );
        assert_eq!(
            target("postgresql://u@h/db").unwrap(),
            Target::Postgres("postgresql://u@h/db".into())
        );
    }
}
