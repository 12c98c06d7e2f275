//! The zonerank domain: pure types and rules, no I/O.

pub mod assessment;
pub mod cancel;
pub mod catalog;
pub mod cluster;
pub mod entity;
pub mod metric;
pub mod observation;
pub mod period;
pub mod quality;
pub mod ranking;
pub mod region;
pub mod screening;
pub mod unit;
