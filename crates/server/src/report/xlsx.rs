//! The Excel report: a sheet of all entries with their criteria, a sheet per city, and the
//! scheme on a sheet of its own.

use std::collections::HashSet;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{Cell, ReportData, entry_header, entry_row, scheme_lines};
use crate::error::ServiceError;

/// The first sheet, with every entry.
pub const ENTRIES_SHEET: &str = "Ranking";
/// The last sheet, with the scheme.
pub const SCHEME_SHEET: &str = "Scheme";

pub fn build(data: &ReportData) -> Result<Vec<u8>, ServiceError> {
    write(data).map_err(|e| ServiceError::Internal(format!("writing the workbook: {e}")))
}

fn write(data: &ReportData) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let header = entry_header(&data.scheme);
    let mut used: HashSet<String> = [ENTRIES_SHEET, SCHEME_SHEET].map(str::to_lowercase).into();

    let sheet = workbook.add_worksheet().set_name(ENTRIES_SHEET)?;
    table(
        sheet,
        &header,
        data.entries.iter().map(|e| entry_row(data, e)),
        &bold,
    )?;

    for (city, entries) in data.by_city() {
        let name = sheet_name(city, &mut used);
        let sheet = workbook.add_worksheet().set_name(&name)?;
        table(
            sheet,
            &header,
            entries.into_iter().map(|e| entry_row(data, e)),
            &bold,
        )?;
    }

    let sheet = workbook.add_worksheet().set_name(SCHEME_SHEET)?;
    sheet.write_string_with_format(0, 0, "field", &bold)?;
    sheet.write_string_with_format(0, 1, "value", &bold)?;
    for (i, (field, value)) in scheme_lines(&data.scheme).into_iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        sheet.write_string(row, 0, field)?;
        sheet.write_string(row, 1, value)?;
    }
    workbook.save_to_buffer()
}

fn table(
    sheet: &mut Worksheet,
    header: &[String],
    rows: impl Iterator<Item = Vec<Cell>>,
    bold: &Format,
) -> Result<(), XlsxError> {
    for (col, name) in header.iter().enumerate() {
        sheet.write_string_with_format(0, column(col), name, bold)?;
    }
    for (i, row) in rows.enumerate() {
        // Reports are capped far below Excel's 1,048,576 rows.
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        for (col, cell) in row.into_iter().enumerate() {
            match cell {
                Cell::Text(text) => {
                    sheet.write_string(r, column(col), text)?;
                }
                Cell::Number(value) => {
                    sheet.write_number(r, column(col), value)?;
                }
                Cell::Empty => {}
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn column(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(u16::MAX)
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`, unique regardless of
/// case (a repeated name gets " (2)", " (3)"…).
pub fn sheet_name(name: &str, used: &mut HashSet<String>) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect();
    let clean = clean.trim_matches('\'').to_owned();
    let base = if clean.is_empty() {
        "city".to_owned()
    } else {
        clean
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while !used.insert(candidate.to_lowercase()) {
        let suffix = format!(" ({n})");
        let keep = 31 - suffix.chars().count();
        candidate = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_legal_and_unique() {
        let mut used = HashSet::from(["ranking".to_owned()]);
        assert_eq!(sheet_name("洛阳市", &mut used), "洛阳市");
        assert_eq!(sheet_name("洛阳市", &mut used), "洛阳市 (2)");
        assert_eq!(sheet_name("Ranking", &mut used), "Ranking (2)");
        assert_eq!(sheet_name("a/b:c", &mut used), "abc");
        assert_eq!(sheet_name(&"长".repeat(40), &mut used).chars().count(), 31);
    }
}
