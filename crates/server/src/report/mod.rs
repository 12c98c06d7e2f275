//! Reports of a stored ranking run that people pass around: CSV (UTF-8 with a byte-order mark,
//! so Excel reads Chinese names), an Excel workbook and one self-contained HTML page with
//! charts. ExportRanking streams them and `zonerank report` writes them to a file; both build
//! them here, from the run's stored entries only.

mod csv;
mod html;
mod xlsx;

use std::collections::BTreeMap;

use zonerank_api::v1;
use zonerank_domain::ranking::ReportFormat;

use crate::error::ServiceError;

/// Largest run a report is built of: a report is read by people, and the workbook is built in
/// memory (about 1 KiB per entry).
pub const MAX_REPORT_ENTRIES: usize = 200_000;

/// Bytes per ExportRanking message.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a report shows: the run, its scheme and entries, and the cities entries lie in.
#[derive(Clone, Debug, Default)]
pub struct ReportData {
    pub run: v1::RankingRun,
    pub scheme: v1::Scheme,
    /// In the run's order (by rank, the excluded last).
    pub entries: Vec<v1::RankingEntry>,
    /// City code → name: every city-level region an entry may lie in.
    pub cities: BTreeMap<String, String>,
}

/// Shown for entries that lie in no city (a province-level cohort, a region entry).
pub const NO_CITY: &str = "—";

impl ReportData {
    /// The code of the city an entry lies in, from its group ranks ("region:410300").
    pub fn city_code<'a>(&'a self, entry: &'a v1::RankingEntry) -> Option<&'a str> {
        entry.group_ranks.iter().find_map(|g| {
            let code = g.group.strip_prefix(crate::ranking::run::REGION_GROUP)?;
            self.cities.contains_key(code).then_some(code)
        })
    }

    /// The name of the city an entry lies in, or [`NO_CITY`].
    pub fn city_name<'a>(&'a self, entry: &'a v1::RankingEntry) -> &'a str {
        self.city_code(entry)
            .and_then(|code| self.cities.get(code))
            .map_or(NO_CITY, String::as_str)
    }

    /// The entries by city name, cities in code order, entries in run order.
    pub fn by_city(&self) -> Vec<(&str, Vec<&v1::RankingEntry>)> {
        let mut groups: BTreeMap<&str, Vec<&v1::RankingEntry>> = BTreeMap::new();
        for entry in &self.entries {
            groups
                .entry(self.city_code(entry).unwrap_or(""))
                .or_default()
                .push(entry);
        }
        groups
            .into_iter()
            .map(|(code, entries)| {
                let name = self.cities.get(code).map_or(NO_CITY, String::as_str);
                (name, entries)
            })
            .collect()
    }
}

/// One cell of a report table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

/// The column names of the entries table: fixed columns, then per criterion its raw value and
/// its contribution to the score.
pub fn entry_header(scheme: &v1::Scheme) -> Vec<String> {
    let mut header: Vec<String> = [
        "rank",
        "entity_kind",
        "entity_id",
        "name",
        "city",
        "score",
        "percentile",
        "stars",
        "class",
        "previous_rank",
        "rank_change",
        "excluded_reason",
    ]
    .map(str::to_owned)
    .into();
    for criterion in &scheme.criteria {
        header.push(criterion.metric.clone());
        header.push(format!("{} contribution", criterion.metric));
    }
    header
}

/// One row of the entries table, in [`entry_header`]'s columns.
pub fn entry_row(data: &ReportData, entry: &v1::RankingEntry) -> Vec<Cell> {
    let int = |n: i32| Cell::Number(f64::from(n));
    let text = |s: &str| Cell::Text(s.to_owned());
    let kind = v1::EntityKind::try_from(entry.entity.as_ref().map_or(0, |e| e.kind))
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("ENTITY_KIND_")
        .to_owned();
    let id = entry.entity.as_ref().map_or("", |e| e.id.as_str());
    let excluded = !entry.excluded_reason.is_empty();
    let mut row = vec![
        if excluded {
            Cell::Empty
        } else {
            int(entry.rank)
        },
        Cell::Text(kind),
        text(id),
        text(&entry.name),
        text(data.city_name(entry)),
        if excluded {
            Cell::Empty
        } else {
            Cell::Number(entry.score)
        },
        if excluded {
            Cell::Empty
        } else {
            Cell::Number(entry.percentile)
        },
        int(entry.stars),
        text(&entry.class_label),
        if entry.previous_rank > 0 {
            int(entry.previous_rank)
        } else {
            Cell::Empty
        },
        if entry.previous_rank > 0 {
            int(entry.rank_change)
        } else {
            Cell::Empty
        },
        text(&entry.excluded_reason),
    ];
    for criterion in &data.scheme.criteria {
        match entry.criteria.iter().find(|c| c.metric == criterion.metric) {
            Some(score) => {
                row.push(score.raw.map_or(Cell::Empty, Cell::Number));
                row.push(Cell::Number(score.contribution));
            }
            None => row.extend([Cell::Empty, Cell::Empty]),
        }
    }
    row
}

/// The report file of `data` in `format`.
pub fn build(format: ReportFormat, data: &ReportData) -> Result<Vec<u8>, ServiceError> {
    if data.entries.len() > MAX_REPORT_ENTRIES {
        return Err(ServiceError::ResourceExhausted {
            message: format!(
                "the run has {} entries; reports are built of at most {MAX_REPORT_ENTRIES}",
                data.entries.len()
            ),
            subject: "report entries".to_owned(),
        });
    }
    match format {
        ReportFormat::Csv => csv::build(data),
        ReportFormat::Xlsx => xlsx::build(data),
        ReportFormat::Html => Ok(html::build(data).into_bytes()),
    }
}

/// The file name a report of `run_id` is offered under.
pub fn file_name(run_id: &str, format: ReportFormat) -> String {
    let safe: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ranking-{safe}.{}", format.extension())
}

/// The name of a wire enum value without its prefix, e.g. "MIN_MAX".
fn wire_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_owned()
}

/// The scheme as (field, value) lines, for the workbook's scheme sheet and the page's header.
pub fn scheme_lines(scheme: &v1::Scheme) -> Vec<(String, String)> {
    let name = |value: i32, f: fn(i32) -> Option<&'static str>, prefix: &str| {
        wire_name(f(value).unwrap_or(""), prefix)
    };
    let mut lines = vec![
        ("id".to_owned(), scheme.id.clone()),
        ("version".to_owned(), scheme.version.to_string()),
        ("name".to_owned(), scheme.name.clone()),
        (
            "normalization".to_owned(),
            name(
                scheme.normalization,
                |v| v1::Normalization::try_from(v).ok().map(|n| n.as_str_name()),
                "NORMALIZATION_",
            ),
        ),
        (
            "weighting".to_owned(),
            name(
                scheme.weighting,
                |v| v1::Weighting::try_from(v).ok().map(|n| n.as_str_name()),
                "WEIGHTING_",
            ),
        ),
        (
            "aggregation".to_owned(),
            name(
                scheme.aggregation,
                |v| v1::Aggregation::try_from(v).ok().map(|n| n.as_str_name()),
                "AGGREGATION_",
            ),
        ),
        (
            "missing_policy".to_owned(),
            name(
                scheme.missing_policy,
                |v| v1::MissingPolicy::try_from(v).ok().map(|n| n.as_str_name()),
                "MISSING_POLICY_",
            ),
        ),
    ];
    for (i, c) in scheme.criteria.iter().enumerate() {
        lines.push((
            format!("criteria[{i}]"),
            format!("{} (weight {})", c.metric, c.weight),
        ));
    }
    for rule in &scheme.star_rules {
        let gates = if rule.gates.is_empty() {
            String::new()
        } else {
            format!(", {}", rule.gates.join(", "))
        };
        lines.push((
            format!("stars {}", rule.level),
            format!("score ≥ {}{gates}", rule.min_score),
        ));
    }
    for cut in &scheme.class_cuts {
        let rule = match cut.min_score {
            Some(min) => format!("score ≥ {min}"),
            None => format!("top {}%", cut.top_percent),
        };
        lines.push((format!("class {}", cut.label), rule));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, rank: i32, city: &str) -> v1::RankingEntry {
        v1::RankingEntry {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: id.to_owned(),
            }),
            name: format!("园区{id}"),
            rank,
            score: 100.0 - f64::from(rank),
            group_ranks: vec![
                v1::GroupRank {
                    group: "region:410000".to_owned(),
                    rank,
                },
                v1::GroupRank {
                    group: format!("region:{city}"),
                    rank: 1,
                },
            ],
            criteria: vec![v1::CriterionScore {
                metric: "tax".to_owned(),
                raw: Some(5.0),
                contribution: 0.5,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn data() -> ReportData {
        ReportData {
            scheme: v1::Scheme {
                criteria: vec![
                    v1::Criterion {
                        metric: "tax".to_owned(),
                        weight: 1.0,
                        ..Default::default()
                    },
                    v1::Criterion {
                        metric: "revenue".to_owned(),
                        weight: 1.0,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            entries: vec![
                entry("a", 1, "410300"),
                entry("b", 2, "410100"),
                entry("c", 3, "410300"),
            ],
            cities: [("410100", "郑州市"), ("410300", "洛阳市")]
                .map(|(c, n)| (c.to_owned(), n.to_owned()))
                .into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_follow_the_header_and_name_the_city() {
        let data = data();
        let header = entry_header(&data.scheme);
        let row = entry_row(&data, &data.entries[0]);
        assert_eq!(header.len(), row.len());
        assert_eq!(row[4], Cell::Text("洛阳市".to_owned()));
        assert_eq!(row[12], Cell::Number(5.0));
        // A criterion the entry has no score for is left empty.
        assert_eq!(row[14], Cell::Empty);
        let cities: Vec<(&str, usize)> = data
            .by_city()
            .into_iter()
            .map(|(name, entries)| (name, entries.len()))
            .collect();
        assert_eq!(cities, [("郑州市", 1), ("洛阳市", 2)]);
        assert_eq!(file_name("r/1", ReportFormat::Csv), "ranking-r_1.csv");
    }
}
