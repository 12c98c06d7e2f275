//! The ranking maths against pymcdm (and scipy) on the same matrices, to 1e-9: numbers must agree with
//! independent implementations. The fixture is written by
//! `tests/fixtures/generate_pymcdm_oracle.py`, which documents every convention it relies on.

use serde_json::Value;
use zonerank_domain::catalog::Direction;
use zonerank_domain::ranking::aggregate::{aggregate, contributions};
use zonerank_domain::ranking::normalize::normalize;
use zonerank_domain::ranking::weighting::{critic_weights, entropy_weights, weights};
use zonerank_domain::ranking::{Aggregation, Normalization, Weighting};

const TOLERANCE: f64 = 1e-9;

/// One matrix of the fixture, held columnar as the ranking code wants it.
struct Case {
    name: String,
    json: Value,
    /// `[criterion][entity]`.
    columns: Vec<Vec<f64>>,
    directions: Vec<Direction>,
}

impl Case {
    /// A `[entity][criterion]` matrix from the fixture, transposed to `[criterion][entity]`.
    fn columns_of(&self, key: &str) -> Vec<Vec<f64>> {
        transpose(&matrix(&self.json[key], &self.name, key))
    }

    fn vector(&self, key: &str) -> Vec<f64> {
        numbers(&self.json[key], &self.name, key)
    }

    fn normalized(&self, method: Normalization) -> Vec<Vec<f64>> {
        self.columns
            .iter()
            .zip(&self.directions)
            .map(|(column, &direction)| normalize(column, direction, method, None))
            .collect()
    }
}

fn fixture() -> (Value, Vec<Case>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pymcdm_oracle.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("the oracle is JSON");
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|json| {
            let name = json["name"].as_str().expect("name").to_owned();
            let columns = transpose(&matrix(&json["matrix"], &name, "matrix"));
            let directions = json["types"]
                .as_array()
                .expect("types")
                .iter()
                .map(|t| match t.as_i64() {
                    Some(1) => Direction::HigherIsBetter,
                    Some(-1) => Direction::LowerIsBetter,
                    other => panic!("{name}: type {other:?}"),
                })
                .collect();
            Case {
                name,
                json: json.clone(),
                columns,
                directions,
            }
        })
        .collect();
    (doc, cases)
}

fn numbers(value: &Value, case: &str, key: &str) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{case}: {key} is not an array"))
        .iter()
        .map(|v| {
            v.as_f64()
                .unwrap_or_else(|| panic!("{case}: {key} has {v}"))
        })
        .collect()
}

fn matrix(value: &Value, case: &str, key: &str) -> Vec<Vec<f64>> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{case}: {key} is not an array"))
        .iter()
        .map(|row| numbers(row, case, key))
        .collect()
}

fn transpose(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|j| rows.iter().map(|row| row[j]).collect())
        .collect()
}

fn assert_close(ours: &[f64], oracle: &[f64], what: &str) {
    assert_eq!(ours.len(), oracle.len(), "{what}: lengths differ");
    for (i, (a, b)) in ours.iter().zip(oracle).enumerate() {
        assert!(
            (a - b).abs() <= TOLERANCE,
            "{what}[{i}]: ours {a}, oracle {b} (diff {:e})",
            (a - b).abs()
        );
    }
}

fn assert_columns_close(ours: &[Vec<f64>], oracle: &[Vec<f64>], what: &str) {
    assert_eq!(ours.len(), oracle.len(), "{what}: column counts differ");
    for (j, (a, b)) in ours.iter().zip(oracle).enumerate() {
        assert_close(a, b, &format!("{what}, criterion {j}"));
    }
}

/// The weights the fixture used for TOPSIS / WSM / WPM, checked to be the entropy weights.
fn aggregation_weights(case: &Case) -> Vec<f64> {
    let w = case.vector("aggregation_weights");
    assert_close(
        &entropy_weights(&case.columns).expect("entropy"),
        &w,
        &format!("{}: aggregation weights are the entropy weights", case.name),
    );
    w
}

#[test]
fn the_fixture_covers_what_it_claims() {
    let (doc, cases) = fixture();
    let version = doc["pymcdm_version"].as_str().expect("pymcdm_version");
    assert!(!version.is_empty());
    assert!(cases.len() >= 5, "{} cases", cases.len());
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for needed in ["ties", "constant_column", "zeros"] {
        assert!(names.contains(&needed), "no {needed} case in {names:?}");
    }
    for case in &cases {
        let rows = case.columns[0].len();
        assert!((12..=40).contains(&rows), "{}: {rows} rows", case.name);
        assert!((3..=6).contains(&case.columns.len()), "{}", case.name);
        assert!(
            case.directions.contains(&Direction::LowerIsBetter)
                && case.directions.contains(&Direction::HigherIsBetter),
            "{}: directions are not mixed",
            case.name
        );
    }
    let constant = cases.iter().find(|c| c.name == "constant_column").unwrap();
    assert!(
        constant
            .columns
            .iter()
            .any(|col| col.iter().all(|&x| x == col[0]))
    );
}

#[test]
fn min_max_matches_pymcdm() {
    for case in fixture().1 {
        assert_columns_close(
            &case.normalized(Normalization::MinMax),
            &case.columns_of("minmax"),
            &format!("{}: min-max", case.name),
        );
    }
}

#[test]
fn vector_matches_pymcdm() {
    for case in fixture().1 {
        assert_columns_close(
            &case.normalized(Normalization::Vector),
            &case.columns_of("vector"),
            &format!("{}: vector", case.name),
        );
    }
}

#[test]
fn z_score_matches_scipy_with_the_population_sd() {
    for case in fixture().1 {
        assert_columns_close(
            &case.normalized(Normalization::ZScore),
            &case.columns_of("zscore_scipy"),
            &format!("{}: z-score", case.name),
        );
    }
}

#[test]
fn percentile_rank_matches_scipy_weak() {
    for case in fixture().1 {
        assert_columns_close(
            &case.normalized(Normalization::PercentileRank),
            &case.columns_of("percentile_scipy"),
            &format!("{}: percentile rank", case.name),
        );
    }
}

#[test]
fn entropy_weights_match_pymcdm() {
    for case in fixture().1 {
        let ours = entropy_weights(&case.columns).expect("values are >= 0");
        let dispatched = weights(Weighting::Entropy, &[], &case.columns, &[]).expect("entropy");
        assert_close(
            &dispatched,
            &ours,
            &format!("{}: weights(Entropy)", case.name),
        );
        if case.json["entropy_weights"].is_null() {
            // pymcdm refuses zeros; zonerank takes 0 ln 0 = 0 (the generator's numpy version).
            assert!(
                case.json["entropy_pymcdm_error"].is_string(),
                "{}",
                case.name
            );
            assert_close(
                &ours,
                &case.vector("entropy_weights_design"),
                &format!("{}: entropy (zonerank, pymcdm refuses zeros)", case.name),
            );
        } else {
            assert_close(
                &ours,
                &case.vector("entropy_weights"),
                &format!("{}: entropy", case.name),
            );
        }
    }
}

#[test]
fn critic_weights_match_pymcdm() {
    for case in fixture().1 {
        // pymcdm's critic_weights on the raw matrix, which it min-maxes itself ignoring types.
        assert_close(
            &critic_weights(&case.columns),
            &case.vector("critic_weights_raw"),
            &format!("{}: CRITIC of the raw matrix", case.name),
        );
        // On the type-aware normalized matrix, which is what `weights(Critic, ..)` is given.
        for (method, key) in [
            (Normalization::MinMax, "critic_weights_minmax"),
            (Normalization::Vector, "critic_weights_vector"),
        ] {
            let normalized = case.normalized(method);
            let oracle = case.vector(key);
            assert_close(
                &critic_weights(&normalized),
                &oracle,
                &format!("{}: CRITIC of {method:?}", case.name),
            );
            assert_close(
                &weights(Weighting::Critic, &[], &case.columns, &normalized).expect("critic"),
                &oracle,
                &format!("{}: weights(Critic) of {method:?}", case.name),
            );
        }
    }
}

#[test]
fn topsis_matches_pymcdm() {
    for case in fixture().1 {
        let w = aggregation_weights(&case);
        for (method, key) in [
            (Normalization::MinMax, "topsis_minmax"),
            (Normalization::Vector, "topsis_vector"),
        ] {
            assert_close(
                &aggregate(Aggregation::Topsis, &case.normalized(method), &w),
                &case.vector(key),
                &format!("{}: TOPSIS with {method:?}", case.name),
            );
        }
    }
}

#[test]
fn weighted_sum_matches_pymcdm_wsm() {
    for case in fixture().1 {
        let w = aggregation_weights(&case);
        for (method, key) in [
            (Normalization::MinMax, "wsm_minmax"),
            (Normalization::Vector, "wsm_vector"),
        ] {
            let normalized = case.normalized(method);
            let what = format!("{}: weighted sum with {method:?}", case.name);
            assert_close(
                &aggregate(Aggregation::WeightedSum, &normalized, &w),
                &case.vector(key),
                &what,
            );
            // The contributions add up to the score.
            let parts = contributions(Aggregation::WeightedSum, &normalized, &w);
            let summed: Vec<f64> = (0..normalized[0].len())
                .map(|i| parts.iter().map(|p| p[i]).sum())
                .collect();
            assert_close(&summed, &case.vector(key), &format!("{what}, summed parts"));
        }
    }
}

#[test]
fn geometric_mean_matches_pymcdm_wpm() {
    for case in fixture().1 {
        let w = aggregation_weights(&case);
        let normalized = case.normalized(Normalization::Vector);
        let what = format!("{}: geometric mean with Vector", case.name);
        assert_close(
            &aggregate(Aggregation::GeometricMean, &normalized, &w),
            &case.vector("wpm_vector"),
            &what,
        );
        // exp of the summed log-parts is the score.
        let parts = contributions(Aggregation::GeometricMean, &normalized, &w);
        let rebuilt: Vec<f64> = (0..normalized[0].len())
            .map(|i| parts.iter().map(|p| p[i]).sum::<f64>().exp())
            .collect();
        assert_close(
            &rebuilt,
            &case.vector("wpm_vector"),
            &format!("{what}, exp of the parts"),
        );
    }
}
