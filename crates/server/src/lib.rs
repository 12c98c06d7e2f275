//! The zonerank gRPC services and the server that runs any set of them on one listener.

pub mod assessment;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod client;
pub mod config;
pub mod convert;
mod error;
pub mod ingestion;
pub mod limits;
pub mod metrics;
pub mod paging;
pub mod process;
mod ranking;
pub mod refusals;
pub mod report;
mod server;
pub mod tls;
pub mod wire_check;

pub use config::{DatabaseArgs, ServerArgs};
pub use error::ServiceError;
pub use server::{RunError, Services, run, shutdown_signal};
pub use zonerank_telemetry::LogFormat;
