//! The CSV report: the entries table, UTF-8 with a byte-order mark so that Excel, which reads
//! a CSV without one in the system's code page, shows Chinese names correctly.

use super::{Cell, ReportData, entry_header, entry_row};
use crate::error::ServiceError;

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

pub fn build(data: &ReportData) -> Result<Vec<u8>, ServiceError> {
    let mut writer = ::csv::Writer::from_writer(BOM.to_vec());
    let write_error = |e: ::csv::Error| ServiceError::Internal(format!("writing the CSV: {e}"));
    writer
        .write_record(entry_header(&data.scheme))
        .map_err(write_error)?;
    for entry in &data.entries {
        let row = entry_row(data, entry).into_iter().map(|cell| match cell {
            Cell::Text(text) => text,
            // Shortest text that reads back as the same number.
            Cell::Number(value) => value.to_string(),
            Cell::Empty => String::new(),
        });
        writer.write_record(row).map_err(write_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| ServiceError::Internal(format!("writing the CSV: {e}")))
}
