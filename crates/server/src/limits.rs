//! The sizes and times every zonerank server and client agrees on, in one place: the servers
//! set them on their listener and services, the clients (the ranking service calling the
//! metrics service, the CLI) on their channels. README's "Limits" section lists them.

use std::time::Duration;

/// Largest request the ingestion service decodes: one ImportCsv file, or one batch of an
/// IngestObservations stream. A bigger file goes through IngestObservations in batches
/// (`zonerank import` streams every observations file).
pub const INGESTION_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Largest request every other service decodes (tonic's default, stated).
pub const REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest answer a server encodes and a zonerank client decodes: a ranking of half a million
/// enterprises, one chunk of a metric table.
pub const RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Concurrent streams (calls) one HTTP/2 connection may have open; SETTINGS_MAX_CONCURRENT_STREAMS.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// Bytes of request headers one call may send (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// How long a call may run on the server at most, whatever deadline the client sent (a
/// shorter `grpc-timeout` wins): also the end of a stream that was opened and never sent.
/// The default of `--max-request-secs`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is closed: a peer that vanished without a FIN is noticed within 30 s.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A zonerank client's own pings while it has calls open (the ranking service calling the
/// metrics service, the CLI): a server that stopped answering (a frozen process, a cut without
/// a FIN) fails the calls on it within 10 s instead of 30. Idle connections are not pinged.
pub const CLIENT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
pub const CLIENT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an accepted connection may stay silent before its first byte: a connection that
/// never starts HTTP/2 is closed then.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepted connections waiting for their first byte at once; more wait in the backlog.
pub const PENDING_CONNECTIONS: usize = 1024;

/// How long readiness waits for the database, or the metrics service, to answer one check.
pub const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
