//! Bulk reads on PostgreSQL through `COPY (query) TO STDOUT (FORMAT binary)`: the rows arrive as
//! one byte stream and are handed to the caller as borrowed field slices, without a row object,
//! a type check or an allocation per row (the driver's row path costs more than the database
//! does to produce a national read). The binary format is PostgreSQL's own (its `COPY`
//! documentation, "Binary Format"); sqlx hands out the raw stream and leaves the parsing to us.
//!
//! A read abandoned half-way (its caller went away) closes its connection, which stops the
//! server's query, instead of handing a pool connection with a half-read `COPY` to the next
//! caller; a read that ends gives its connection back to the pool.

use std::sync::Arc;

use futures::TryStreamExt;
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, sqlx};

use crate::StorageError;

/// The columns a read may have.
pub(crate) const MAX_FIELDS: usize = 8;

/// One row's fields: `None` for NULL.
pub(crate) type Fields<'a> = [Option<&'a [u8]>; MAX_FIELDS];

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

fn driver_err(e: sqlx::Error) -> StorageError {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))).into()
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("binary COPY stream: {what}"))
}

/// A pool connection lent to one read. A read dropped before its stream ended (its caller
/// went away) takes the connection out of the pool and closes it, which ends the server's
/// query; the pool opens another when it needs one. A read that ends returns it.
struct Lent {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    done: bool,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if !self.done
            && let Some(conn) = self.conn.take()
        {
            drop(conn.detach());
        }
    }
}

/// Runs `select` (a complete SELECT with its values inlined) and calls `row` with each row's
/// fields, in the order the query gives them.
pub(crate) async fn for_each_row(
    db: &DatabaseConnection,
    select: &str,
    mut row: impl FnMut(&Fields<'_>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut lent = Lent {
        conn: Some(
            db.get_postgres_connection_pool()
                .acquire()
                .await
                .map_err(driver_err)?,
        ),
        done: false,
    };
    let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let mut parser = Parser::default();
    let conn = lent.conn.as_mut().expect("lent above");
    let mut stream = conn.copy_out_raw(&copy).await.map_err(driver_err)?;
    while let Some(chunk) = stream.try_next().await.map_err(driver_err)? {
        parser.feed(&chunk, &mut row)?;
        // Buffered chunks arrive without the stream ever waiting, so the read would keep
        // its worker thread to the end; two such reads at once starve the runtime of the
        // threads that answer HTTP/2 pings and health checks.
        tokio::task::consume_budget().await;
    }
    drop(stream);
    lent.done = true;
    if !parser.finished {
        return Err(corrupt("ended before its trailer"));
    }
    Ok(())
}

/// The state of a binary COPY stream between chunks: the bytes of a row cut by a chunk
/// boundary wait in `pending`.
#[derive(Default)]
struct Parser {
    pending: Vec<u8>,
    header_seen: bool,
    finished: bool,
}

impl Parser {
    fn feed(
        &mut self,
        chunk: &[u8],
        row: &mut impl FnMut(&Fields<'_>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            let used = self.parse(chunk, row)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            let used = self.parse(&pending, row)?;
            self.pending = pending;
            self.pending.drain(..used);
        }
        Ok(())
    }

    /// Parses the complete rows at the start of `buf`; the bytes used.
    fn parse(
        &mut self,
        buf: &[u8],
        row: &mut impl FnMut(&Fields<'_>) -> Result<(), StorageError>,
    ) -> Result<usize, StorageError> {
        let mut at = 0;
        if !self.header_seen {
            // Signature, flags, then the length of a header extension to skip.
            let Some(extension) = buf.get(15..19) else {
                return Ok(0);
            };
            if &buf[..11] != SIGNATURE {
                return Err(corrupt("no PGCOPY signature"));
            }
            let skip = 19 + u32::from_be_bytes(extension.try_into().expect("4 bytes")) as usize;
            if buf.len() < skip {
                return Ok(0);
            }
            self.header_seen = true;
            at = skip;
        }
        while !self.finished {
            let Some(count) = buf.get(at..at + 2) else {
                break;
            };
            let count = i16::from_be_bytes(count.try_into().expect("2 bytes"));
            if count == -1 {
                self.finished = true;
                at += 2;
                break;
            }
            let count = usize::try_from(count).map_err(|_| corrupt("negative field count"))?;
            if count > MAX_FIELDS {
                return Err(corrupt("more fields than a read has"));
            }
            let mut fields: Fields<'_> = [None; MAX_FIELDS];
            let mut next = at + 2;
            let mut complete = true;
            for field in fields.iter_mut().take(count) {
                let Some(length) = buf.get(next..next + 4) else {
                    complete = false;
                    break;
                };
                let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
                next += 4;
                if length < 0 {
                    continue;
                }
                let end = next + length as usize;
                let Some(bytes) = buf.get(next..end) else {
                    complete = false;
                    break;
                };
                *field = Some(bytes);
                next = end;
            }
            if !complete {
                break;
            }
            row(&fields)?;
            at = next;
        }
        Ok(at)
    }
}

/// A text field.
pub(crate) fn text(field: Option<&[u8]>) -> Result<&str, StorageError> {
    std::str::from_utf8(field.ok_or_else(|| corrupt("a NULL text"))?)
        .map_err(|_| corrupt("text that is not UTF-8"))
}

/// A fixed-width field of `N` bytes, named `what` in errors.
fn fixed<const N: usize>(field: Option<&[u8]>, what: &str) -> Result<[u8; N], StorageError> {
    field
        .ok_or_else(|| corrupt(&format!("a NULL {what}")))?
        .try_into()
        .map_err(|_| corrupt(&format!("a {what} not {N} bytes")))
}

/// An `int4` field.
pub(crate) fn int4(field: Option<&[u8]>) -> Result<i32, StorageError> {
    Ok(i32::from_be_bytes(fixed(field, "int4")?))
}

/// A `float8` field.
pub(crate) fn float8(field: Option<&[u8]>) -> Result<f64, StorageError> {
    Ok(f64::from_be_bytes(fixed(field, "float8")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of two rows (text, int4 NULL, float8) and the trailer, as PostgreSQL sends it.
    fn stream() -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0u32.to_be_bytes());
        out.extend(0u32.to_be_bytes());
        for (text, number) in [("e1", 1.5f64), ("企业", -2.0)] {
            out.extend(3i16.to_be_bytes());
            out.extend((text.len() as i32).to_be_bytes());
            out.extend(text.as_bytes());
            out.extend((-1i32).to_be_bytes());
            out.extend(8i32.to_be_bytes());
            out.extend(number.to_be_bytes());
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    fn read(chunks: &[&[u8]]) -> (Vec<(String, Option<i32>, f64)>, bool) {
        let mut parser = Parser::default();
        let mut rows = Vec::new();
        for chunk in chunks {
            parser
                .feed(chunk, &mut |f: &Fields<'_>| {
                    rows.push((
                        text(f[0])?.to_string(),
                        f[1].map(|b| int4(Some(b)).unwrap()),
                        float8(f[2])?,
                    ));
                    Ok(())
                })
                .unwrap();
        }
        (rows, parser.finished)
    }

    #[test]
    fn rows_cut_anywhere_by_chunks_read_the_same() {
        let bytes = stream();
        let whole = read(&[&bytes]);
        assert_eq!(
            whole,
            (
                vec![("e1".into(), None, 1.5), ("企业".into(), None, -2.0)],
                true
            )
        );
        for cut in 1..bytes.len() {
            assert_eq!(read(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read(&single), whole);
    }

    #[test]
    fn a_stream_without_the_signature_is_refused() {
        let mut parser = Parser::default();
        let bytes = vec![0u8; 32];
        assert!(parser.feed(&bytes, &mut |_: &Fields<'_>| Ok(())).is_err());
    }

    /// A read its caller abandons half-way closes its connection, which stops the server's
    /// query; the pool goes on serving, and a read to the end keeps its connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_read_stops_its_query_and_the_pool_goes_on() {
        use sea_orm::{ConnectionTrait, Statement};
        let test_db = crate::test_support::TestDatabase::postgres()
            .await
            .expect("database");
        let store = crate::Store::connect(&test_db.url).await.expect("connect");
        let db = &store.db;
        let select = "SELECT g::text, g, g::float8 FROM generate_series(1, 2000000) AS g";
        let mut seen = 0;
        let abandoned = for_each_row(db, select, |_| {
            seen += 1;
            if seen == 10 {
                return Err(StorageError::InvalidPageToken);
            }
            Ok(())
        })
        .await;
        assert!(abandoned.is_err());
        assert_eq!(seen, 10);
        let copies = || async {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'COPY (%'",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        };
        let mut left = copies().await;
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            left = copies().await;
        }
        assert_eq!(left, 0, "the abandoned COPY is still running");
        let mut count = 0;
        for_each_row(
            db,
            "SELECT g::text, g, g::float8 FROM generate_series(1, 1000) AS g",
            |f| {
                assert_eq!(text(f[0])?.parse::<i32>().unwrap(), int4(f[1])?);
                count += 1;
                Ok(())
            },
        )
        .await
        .expect("a read after the abandoned one");
        assert_eq!(count, 1000);
        drop(store);
        test_db.drop().await.expect("drop");
    }

    #[test]
    fn a_stream_cut_before_its_trailer_is_not_finished() {
        let bytes = stream();
        let (rows, finished) = read(&[&bytes[..bytes.len() - 2]]);
        assert_eq!(rows.len(), 2);
        assert!(!finished);
    }
}
