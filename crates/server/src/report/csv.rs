//! The CSV report: the entries table, UTF-8 with a byte-order mark so that Excel, which reads
//! a CSV without one in the system's code page, shows Chinese names correctly. Text that a
//! spreadsheet would run as a formula is neutralised (OWASP's CSV-injection rule).

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
            Cell::Text(text) => inert(text),
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

/// `text` as a spreadsheet shows it and never runs it: a cell starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'`, which Excel and LibreOffice read as "text".
/// Numbers are written as numbers, so a negative one is untouched.
fn inert(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn formulas_are_shown_as_text() {
        for formula in [
            "=HYPERLINK(\"http://evil.example\",\"点我\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(inert(formula.into()), format!("'{formula}"));
        }
        for plain in ["确山县产业集聚区", "411725-CJQ", "a=b", ""] {
            assert_eq!(inert(plain.into()), plain);
        }
    }
}
