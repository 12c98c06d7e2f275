//! The HTML report: one self-contained page (no script, no stylesheet or font fetched from
//! anywhere) with the ranking table, star and class counts by city, a level-versus-growth
//! scorecard with the cohort medians, and each city's zones as a small-multiple bar chart.
//!
//! The charts are SVG written here rather than with a plotting crate: they are a few rectangles,
//! circles and lines, and written by hand their labels stay real text in the page's CJK font
//! list (a plotting backend would need its own font files to measure Chinese text), the page
//! stays small, and no dependency is added for it.

use std::fmt::Write;

use zonerank_api::v1;

use super::{ReportData, scheme_lines};
use crate::report::NO_CITY;

/// Fonts tried in order: Noto/Source Han (Linux), PingFang (macOS), YaHei (Windows).
const FONTS: &str = "\"Noto Sans CJK SC\", \"Noto Sans SC\", \"Source Han Sans SC\", \
                     \"PingFang SC\", \"Microsoft YaHei\", \"WenQuanYi Micro Hei\", sans-serif";

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn number(value: f64) -> String {
    format!("{value:.2}")
}

pub fn build(data: &ReportData) -> String {
    let title = if data.scheme.name.is_empty() {
        data.scheme.id.clone()
    } else {
        data.scheme.name.clone()
    };
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} {period}</title>\n<style>\n\
         body {{ font-family: {FONTS}; margin: 24px; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 8px 0 24px; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; }}\n\
         th {{ background: #eef2f7; }}\n\
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         .multiples {{ display: flex; flex-wrap: wrap; gap: 16px; }}\n\
         svg text {{ font-family: {FONTS}; font-size: 11px; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>period {period} · run {run} · scheme {scheme} v{version} · {count} entities</p>\n",
        title = escape(&title),
        period = escape(&data.run.period),
        run = escape(&data.run.run_id),
        scheme = escape(&data.scheme.id),
        version = data.scheme.version,
        count = data.entries.len(),
    );
    counts_by_city(&mut page, data);
    page.push_str("<h2>Level and growth</h2>\n");
    page.push_str(&scorecard(data));
    page.push_str("<h2>Zones by city</h2>\n<div class=\"multiples\">\n");
    for (city, entries) in data.by_city() {
        page.push_str(&small_multiple(city, &entries));
    }
    page.push_str("</div>\n");
    ranking_table(&mut page, data);
    page.push_str("<h2>Scheme</h2>\n<table id=\"scheme\">\n");
    for (field, value) in scheme_lines(&data.scheme) {
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&field),
            escape(&value)
        );
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

fn counts_by_city(page: &mut String, data: &ReportData) {
    let max_stars = data.entries.iter().map(|e| e.stars).max().unwrap_or(0);
    let mut labels: Vec<&str> = data
        .entries
        .iter()
        .map(|e| e.class_label.as_str())
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort_unstable();
    labels.dedup();
    page.push_str("<h2>Stars and classes by city</h2>\n<table id=\"counts\">\n<tr><th>city</th><th>entities</th>");
    for level in 1..=max_stars {
        let _ = write!(page, "<th>{}</th>", "★".repeat(level as usize));
    }
    for label in &labels {
        let _ = write!(page, "<th>class {}</th>", escape(label));
    }
    page.push_str("</tr>\n");
    for (city, entries) in data.by_city() {
        let _ = write!(
            page,
            "<tr class=\"city\"><td>{}</td><td class=\"n\">{}</td>",
            escape(city),
            entries.len()
        );
        for level in 1..=max_stars {
            let n = entries.iter().filter(|e| e.stars == level).count();
            let _ = write!(page, "<td class=\"n\">{n}</td>");
        }
        for label in &labels {
            let n = entries.iter().filter(|e| e.class_label == *label).count();
            let _ = write!(page, "<td class=\"n\">{n}</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

fn ranking_table(page: &mut String, data: &ReportData) {
    page.push_str(
        "<h2>Ranking</h2>\n<table id=\"ranking\">\n<thead><tr><th>rank</th><th>name</th>\
         <th>city</th><th>score</th><th>stars</th><th>class</th><th>change</th>",
    );
    for criterion in &data.scheme.criteria {
        let _ = write!(page, "<th>{}</th>", escape(&criterion.metric));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for entry in &data.entries {
        let excluded = !entry.excluded_reason.is_empty();
        let rank = if excluded {
            format!("— ({})", escape(&entry.excluded_reason))
        } else {
            entry.rank.to_string()
        };
        let change = if entry.previous_rank > 0 {
            format!("{:+}", entry.rank_change)
        } else {
            String::new()
        };
        let _ = write!(
            page,
            "<tr class=\"entry\"><td class=\"n\">{rank}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{change}</td>",
            escape(&entry.name),
            escape(data.city_name(entry)),
            if excluded {
                String::new()
            } else {
                number(entry.score)
            },
            "★".repeat(entry.stars.max(0) as usize),
            escape(&entry.class_label),
        );
        for criterion in &data.scheme.criteria {
            let raw = entry
                .criteria
                .iter()
                .find(|c| c.metric == criterion.metric)
                .and_then(|c| c.raw);
            let _ = write!(
                page,
                "<td class=\"n\">{}</td>",
                raw.map(number).unwrap_or_default()
            );
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

/// The median of the values, None when there are none.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Maps [lo, hi] onto [a, b]; a degenerate range maps to the middle.
fn scale(value: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (value - lo) / (hi - lo) * (b - a)
    } else {
        (a + b) / 2.0
    }
}

/// The US Cluster Mapping scorecard: score (level) against its change since the previous run
/// (growth), with dashed lines at the cohort's medians splitting it into quadrants.
fn scorecard(data: &ReportData) -> String {
    let points: Vec<(&v1::RankingEntry, f64, f64)> = data
        .entries
        .iter()
        .filter(|e| e.excluded_reason.is_empty())
        .map(|e| {
            let growth = if e.previous_rank > 0 {
                e.score - e.previous_score
            } else {
                0.0
            };
            (e, e.score, growth)
        })
        .collect();
    let has_previous = data.entries.iter().any(|e| e.previous_rank > 0);
    let (width, height, left, right, top, bottom) = (640.0, 420.0, 56.0, 16.0, 16.0, 40.0);
    let mut svg = format!(
        "<svg id=\"scorecard\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">\n\
         <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fafbfd\" stroke=\"#ccc\"/>\n"
    );
    let xs: Vec<f64> = points.iter().map(|p| p.1).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.2).collect();
    let bounds = |values: &[f64]| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
    };
    let (x_lo, x_hi) = bounds(&xs);
    let (y_lo, y_hi) = bounds(&ys);
    let px = |x: f64| scale(x, x_lo, x_hi, left + 8.0, width - right - 8.0);
    let py = |y: f64| scale(y, y_lo, y_hi, height - bottom - 8.0, top + 8.0);
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#555\"/>\
         <text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\">score (level)</text>\
         <text x=\"14\" y=\"{cy}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {cy})\">{growth}</text>\
         <text x=\"{left}\" y=\"{ty}\">{x_lo}</text><text x=\"{r}\" y=\"{ty}\" text-anchor=\"end\">{x_hi}</text>\
         <text x=\"{yx}\" y=\"{y_lo_at}\" text-anchor=\"end\">{y_lo}</text>\
         <text x=\"{yx}\" y=\"{y_hi_at}\" text-anchor=\"end\">{y_hi}</text>",
        b = height - bottom,
        r = width - right,
        cx = (left + width - right) / 2.0,
        ty = height - 14.0,
        cy = (top + height - bottom) / 2.0,
        growth = if has_previous {
            "score change (growth)"
        } else {
            "score change (no previous run)"
        },
        x_lo = number(x_lo),
        x_hi = number(x_hi),
        yx = left - 4.0,
        y_lo_at = py(y_lo) + 4.0,
        y_hi_at = py(y_hi) + 4.0,
        y_lo = number(y_lo),
        y_hi = number(y_hi),
    );
    if let (Some(mx), Some(my)) = (median(&mut xs.clone()), median(&mut ys.clone())) {
        let _ = writeln!(
            svg,
            "<line class=\"median\" x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#c0392b\" stroke-dasharray=\"5,4\"/>\
             <line class=\"median\" x1=\"{left}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#c0392b\" stroke-dasharray=\"5,4\"/>\
             <text x=\"{tx}\" y=\"{ty}\" fill=\"#c0392b\">median {mx}</text>",
            x = px(mx),
            y = py(my),
            b = height - bottom,
            r = width - right,
            tx = px(mx) + 4.0,
            ty = top + 12.0,
            mx = number(mx),
        );
    }
    for (entry, x, y) in &points {
        let _ = writeln!(
            svg,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#2e86de\" \
             fill-opacity=\"0.75\"><title>{} {} / {}</title></circle>",
            px(*x),
            py(*y),
            escape(&entry.name),
            number(*x),
            number(*y),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One city's entries as horizontal bars of their scores.
fn small_multiple(city: &str, entries: &[&v1::RankingEntry]) -> String {
    let ranked: Vec<&&v1::RankingEntry> = entries
        .iter()
        .filter(|e| e.excluded_reason.is_empty())
        .collect();
    let (width, row, label) = (300.0, 16.0, 120.0);
    let height = 28.0 + row * ranked.len().max(1) as f64;
    let max = ranked.iter().map(|e| e.score).fold(0.0_f64, f64::max);
    let mut svg = format!(
        "<svg class=\"multiple\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n\
         <text x=\"4\" y=\"16\" font-weight=\"bold\">{}</text>\n",
        escape(if city.is_empty() { NO_CITY } else { city })
    );
    for (i, entry) in ranked.iter().enumerate() {
        let y = 24.0 + row * i as f64;
        let bar = if max > 0.0 {
            (entry.score.max(0.0) / max) * (width - label - 44.0)
        } else {
            0.0
        };
        let _ = writeln!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{name}</text>\
             <rect class=\"bar\" x=\"{label}\" y=\"{y}\" width=\"{bar:.1}\" height=\"{h}\" fill=\"#27ae60\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{score}</text>",
            lx = label - 4.0,
            ty = y + row - 5.0,
            name = escape(&entry.name.chars().take(9).collect::<String>()),
            h = row - 3.0,
            vx = label + bar + 3.0,
            score = number(entry.score),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_medians_are_medians() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
