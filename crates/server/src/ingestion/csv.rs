//! The long CSV format of observations: `entity_kind,entity_id,indicator,period,value,unit`
//! with an optional `source` column; UTF-8 with an optional byte-order mark.

use crate::error::{ServiceError, Violation};

/// The columns every file must have, in any order.
pub const REQUIRED_COLUMNS: [&str; 6] = [
    "entity_kind",
    "entity_id",
    "indicator",
    "period",
    "value",
    "unit",
];

/// One data line of a CSV file, fields as written.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// The line number in the file; the header is line 1.
    pub line: i64,
    pub entity_kind: String,
    pub entity_id: String,
    pub indicator: String,
    pub period: String,
    pub value: String,
    pub unit: String,
    /// Empty when the file has no source column or the cell is blank.
    pub source: String,
}

/// A line that could not be split into fields.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvLineError {
    pub line: i64,
    pub reason: String,
}

/// Splits a file into rows. A file-level fault (not UTF-8, a missing column) fails the whole
/// file; a malformed line is reported and the others go on.
pub fn parse(content: &[u8]) -> Result<(Vec<CsvRow>, Vec<CsvLineError>), ServiceError> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    each_row(content, |row| match row {
        Ok(row) => rows.push(row),
        Err(e) => errors.push(e),
    })?;
    Ok((rows, errors))
}

/// [`parse`] one line at a time: `visit` gets each row, or the fault of a malformed line, in
/// file order, so a reader can send rows on while later ones are still being split.
pub fn each_row(
    content: &[u8],
    mut visit: impl FnMut(Result<CsvRow, CsvLineError>),
) -> Result<(), ServiceError> {
    let content = content
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(content);
    if let Err(e) = std::str::from_utf8(content) {
        let line = 1 + content[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        return Err(ServiceError::invalid(
            format!("rows[{line}]"),
            "the file is not UTF-8 text (save it as CSV UTF-8)",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(content);
    let headers = reader
        .headers()
        .map_err(|e| ServiceError::invalid("header", e))?
        .clone();
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| position(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ServiceError::InvalidArgument {
            message: format!(
                "header: missing column(s) {}; expected {},source (source optional)",
                missing.join(", "),
                REQUIRED_COLUMNS.join(",")
            ),
            violations: missing
                .iter()
                .map(|c| Violation::new("header", format!("missing column {c}")))
                .collect(),
        });
    }
    let col: Vec<usize> = REQUIRED_COLUMNS
        .iter()
        .map(|c| position(c).unwrap_or_default())
        .collect();
    let source_col = position("source");
    // csv counts neither blank lines in its line numbers nor in where a record starts (its
    // offset points at the blank lines before it): skip them and count newlines ourselves,
    // to name the line a user sees in an editor.
    let newlines: Vec<usize> = content
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == b'\n').then_some(i))
        .collect();
    let line_at = |byte: u64| {
        let mut start = byte as usize;
        while matches!(content.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        1 + newlines.partition_point(|&n| n < start) as i64
    };
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(0);
                visit(Err(CsvLineError {
                    line,
                    reason: e.to_string(),
                }));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(p.byte())).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != headers.len() {
            visit(Err(CsvLineError {
                line,
                reason: format!(
                    "{} field(s) where the header has {}",
                    record.len(),
                    headers.len()
                ),
            }));
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        visit(Ok(CsvRow {
            line,
            entity_kind: field(col[0]),
            entity_id: field(col[1]),
            indicator: field(col[2]),
            period: field(col[3]),
            value: field(col[4]),
            unit: field(col[5]),
            source: source_col.map(field).unwrap_or_default(),
        }));
    }
    Ok(())
}

/// Reads a number exactly as written, refusing anything that could be read two ways: plain
/// decimals (`53.2`, `-0.5`, `.5`), exponents (`1.2e3`), a comma only as a thousands separator
/// in groups of three (`3,500`, `1,234,567.8`), and a trailing `%`. Spaces inside, a decimal
/// comma (`1,5`), European grouping (`1.234,5`), `inf` and `NaN` are refused.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let trimmed = text.trim_matches([' ', '\t']);
    let body = trimmed
        .strip_suffix(['%', '％'])
        .unwrap_or(trimmed)
        .trim_end_matches([' ', '\t']);
    if body.is_empty() {
        return Err("value is empty".to_string());
    }
    let not_a_number = |why: &str| format!("{text:?} is not a number: {why}");
    let unsigned = body.strip_prefix(['-', '+']).unwrap_or(body);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(f) = fraction
        && !f.is_empty()
        && !digits(f)
    {
        return Err(not_a_number(if f.contains(',') {
            "a comma after the decimal point (write decimals with a point only: 1234.5)"
        } else {
            "only digits may follow the decimal point"
        }));
    }
    if whole.is_empty() && fraction.is_none_or(str::is_empty) {
        return Err(not_a_number("no digits"));
    }
    let grouped = whole.contains(',');
    if grouped {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        let well_formed =
            digits(first) && first.len() <= 3 && groups.all(|g| g.len() == 3 && digits(g));
        if !well_formed {
            return Err(not_a_number(
                "a comma only separates thousands, in groups of three (3,500 or 1,234,567.8); \
                 write decimals with a point (1.5)",
            ));
        }
    } else if !whole.is_empty() && !digits(whole) {
        return Err(not_a_number(
            "write a plain decimal (1234.5), optionally with thousands separators (1,234.5) or an exponent (1.2e3)",
        ));
    }
    if let Some(exponent) = exponent {
        let exponent_digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        if grouped || !digits(exponent_digits) {
            return Err(not_a_number(
                "an exponent is written as 1.2e3 or 5E-2, without thousands separators",
            ));
        }
    }
    let plain: String = body.chars().filter(|c| *c != ',').collect();
    let value = plain
        .parse::<f64>()
        .map_err(|_| not_a_number("not a decimal number"))?;
    if !value.is_finite() {
        return Err(not_a_number("too large for a figure"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "entity_kind,entity_id,indicator,period,value,unit\n";

    #[test]
    fn rows_keep_their_line_numbers_and_a_bom_is_ignored() {
        let file = format!(
            "\u{feff}{HEADER}ZONE,z1,tax,2014-H1,1.14,亿元\n\nZONE,z2,tax,2014,\"1,234.5\",万元\n"
        );
        let (rows, errors) = parse(file.as_bytes()).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].unit, "亿元");
        assert_eq!(rows[1].line, 4);
        assert_eq!(parse_number(&rows[1].value), Ok(1234.5));
    }

    #[test]
    fn columns_may_come_in_any_order_with_a_source() {
        let file = "value,unit,period,indicator,entity_id,entity_kind,source\n5,万元,2024,tax,z1,ZONE,统计局\n";
        let (rows, _) = parse(file.as_bytes()).unwrap();
        assert_eq!(rows[0].entity_id, "z1");
        assert_eq!(rows[0].value, "5");
        assert_eq!(rows[0].source, "统计局");
    }

    #[test]
    fn a_missing_column_fails_the_file_naming_it() {
        let err = parse(b"entity_kind,entity_id,indicator,period,value\n").unwrap_err();
        assert!(err.to_string().contains("missing column(s) unit"), "{err}");
    }

    #[test]
    fn text_that_is_not_utf8_fails_naming_the_line() {
        let mut file = HEADER.as_bytes().to_vec();
        file.extend_from_slice(b"ZONE,z1,tax,2014,1,\xd2\xda\xd4\xaa\n");
        let err = parse(&file).unwrap_err();
        assert!(err.to_string().starts_with("rows[2]"), "{err}");
    }

    #[test]
    fn a_short_line_is_reported_and_the_rest_go_on() {
        let file = format!("{HEADER}ZONE,z1,tax\nZONE,z1,tax,2014,1,万元\n");
        let (rows, errors) = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn numbers_as_spreadsheets_write_them() {
        assert_eq!(parse_number(" 53.2 "), Ok(53.2));
        assert_eq!(parse_number("66%"), Ok(66.0));
        assert_eq!(parse_number("66 %"), Ok(66.0));
        assert_eq!(parse_number("3,800"), Ok(3800.0));
        assert_eq!(parse_number("3,500"), Ok(3500.0));
        assert_eq!(parse_number("1,234,567.8"), Ok(1_234_567.8));
        assert_eq!(parse_number("-1,234"), Ok(-1234.0));
        assert_eq!(parse_number("1.2e3"), Ok(1200.0));
        assert_eq!(parse_number("5E-2"), Ok(0.05));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("7."), Ok(7.0));
        assert_eq!(parse_number("+4"), Ok(4.0));
        assert!(parse_number("").is_err());
        assert!(parse_number("abc").is_err());
    }

    #[test]
    fn numbers_that_could_be_read_two_ways_are_refused() {
        for text in [
            "1,5",
            "1.234,5",
            "1 234",
            "1\n2",
            "1\t2",
            "12,34",
            "1,2345",
            ",123",
            "1,,234",
            "1,234.5,6",
            "1.2.3",
            "inf",
            "-inf",
            "NaN",
            "infinity",
            "1e",
            "1e+",
            "1,234e3",
            "0x10",
            "1_000",
            "１２",
            "1e400",
            "--1",
            "%",
            "1，234",
        ] {
            let err = parse_number(text).expect_err(text);
            assert!(
                err.contains("is not a number") || err.contains("empty"),
                "{text}: {err}"
            );
        }
        assert!(parse_number("1,5").unwrap_err().contains("groups of three"));
    }

    #[test]
    fn a_line_with_more_fields_than_the_header_is_refused() {
        let file = format!("{HEADER}ZONE,z1,tax,2014,1,万元,extra\nZONE,z1,tax,2015,1,万元\n");
        let (rows, errors) = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0]
                .reason
                .contains("7 field(s) where the header has 6"),
            "{errors:?}"
        );
    }
}
