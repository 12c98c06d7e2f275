//! The assessment lifecycle's pure rules: publication and objection states, standings across
//! published periods (晋星, 降星, 摘牌), lists with ties at the cut, warning thresholds and the
//! policies each class carries.

mod standing;

pub use standing::{
    EntityFacts, ExitRule, PeriodFacts, StandingEvent, StandingRow, StandingRules, standings,
};

/// Where a published version of a (scheme, period) is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublicationState {
    /// Published, open for objections until the notice ends.
    PublicNotice,
    /// The notice is closed; the result is final.
    Final,
    /// A corrected version replaced it; it stays readable.
    Superseded,
}

/// Where an objection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectionState {
    Open,
    Accepted,
    Rejected,
}

/// A stored state's spelling and back.
macro_rules! stored_names {
    ($ty:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        impl $ty {
            /// The spelling stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),+ }
            }

            /// The state stored as `text`.
            pub fn parse(text: &str) -> Option<$ty> {
                match text { $($s => Some($ty::$v),)+ _ => None }
            }
        }
    };
}

stored_names!(PublicationState {
    PublicNotice = "PUBLIC_NOTICE",
    Final = "FINAL",
    Superseded = "SUPERSEDED",
});
stored_names!(ObjectionState {
    Open = "OPEN",
    Accepted = "ACCEPTED",
    Rejected = "REJECTED",
});

/// What a policy attached to a class does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// 差别化电价: a surcharge in yuan per kWh.
    ElectricitySurcharge,
    /// Land supply priority or restriction.
    LandSupply,
    /// A subsidy.
    Subsidy,
    Other,
}

/// The items of a list in their order (best first) cut after `n`, with every item tied with
/// the last one inside the cut listed too. Each item comes with whether it is tied at the cut
/// (only when the tie crosses the cut). `key` is what ties are judged by.
pub fn top_with_ties<T, K: PartialEq>(
    items: Vec<T>,
    n: usize,
    key: impl Fn(&T) -> K,
) -> Vec<(T, bool)> {
    if n == 0 || items.len() <= n {
        return items.into_iter().map(|t| (t, false)).collect();
    }
    let cut = key(&items[n - 1]);
    let crosses = key(&items[n]) == cut;
    let mut listed = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let tied = crosses && key(&item) == cut;
        if i >= n && !tied {
            break;
        }
        listed.push((item, tied));
    }
    listed
}

/// Warning and excellence thresholds of one metric; unset bounds are not checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Threshold {
    pub metric: String,
    pub warn_below: Option<f64>,
    pub warn_above: Option<f64>,
    pub excellent_above: Option<f64>,
    pub label: String,
}

/// Whether an alert warns or marks excellence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertLevel {
    Warning,
    Excellent,
}

/// One threshold crossed by one entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The entity's position in the value columns.
    pub entity: usize,
    /// The threshold's position.
    pub threshold: usize,
    pub value: f64,
    /// The bound crossed.
    pub bound: f64,
    pub level: AlertLevel,
}

/// The thresholds `values[threshold][entity]` crosses, by entity then threshold. A value
/// strictly below `warn_below`, strictly above `warn_above` or strictly above
/// `excellent_above` crosses; missing values cross nothing.
pub fn alerts(thresholds: &[Threshold], values: &[Vec<Option<f64>>]) -> Vec<Alert> {
    let entities = values.iter().map(Vec::len).max().unwrap_or(0);
    let mut found = Vec::new();
    for entity in 0..entities {
        for (t, threshold) in thresholds.iter().enumerate() {
            let Some(value) = values
                .get(t)
                .and_then(|column| column.get(entity))
                .copied()
                .flatten()
            else {
                continue;
            };
            // (bound, level, crossed when the value is below it)
            let checks = [
                (threshold.warn_below, AlertLevel::Warning, true),
                (threshold.warn_above, AlertLevel::Warning, false),
                (threshold.excellent_above, AlertLevel::Excellent, false),
            ];
            for (bound, level, below) in checks {
                let Some(bound) = bound else { continue };
                let crossed = if below { value < bound } else { value > bound };
                if crossed {
                    found.push(Alert {
                        entity,
                        threshold: t,
                        value,
                        bound,
                        level,
                    });
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_as_stored() {
        for s in [
            PublicationState::PublicNotice,
            PublicationState::Final,
            PublicationState::Superseded,
        ] {
            assert_eq!(PublicationState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ObjectionState::parse("OPEN"), Some(ObjectionState::Open));
        assert_eq!(ObjectionState::parse("open"), None);
    }

    #[test]
    fn ties_at_the_cut_are_all_listed_and_flagged() {
        let scores = vec![("a", 9), ("b", 8), ("c", 7), ("d", 7), ("e", 7), ("f", 5)];
        let top = top_with_ties(scores.clone(), 3, |&(_, s)| s);
        let shown: Vec<(&str, bool)> = top.iter().map(|((id, _), tied)| (*id, *tied)).collect();
        assert_eq!(
            shown,
            vec![
                ("a", false),
                ("b", false),
                ("c", true),
                ("d", true),
                ("e", true)
            ]
        );
        // A tie inside the cut is not flagged and lists nothing more.
        let top = top_with_ties(scores.clone(), 5, |&(_, s)| s);
        assert_eq!(top.len(), 5);
        assert!(top.iter().all(|(_, tied)| !tied));
        // A cut past the end lists everything.
        assert_eq!(top_with_ties(scores, 10, |&(_, s)| s).len(), 6);
    }

    #[test]
    fn alerts_list_the_crossings_with_their_bound() {
        let thresholds = vec![Threshold {
            metric: "yoy(per_mu(tax))".into(),
            warn_below: Some(0.0),
            excellent_above: Some(0.1),
            ..Default::default()
        }];
        let values = vec![vec![Some(-0.05), Some(0.0), Some(0.25), None, Some(0.1)]];
        let found = alerts(&thresholds, &values);
        assert_eq!(
            found,
            vec![
                Alert {
                    entity: 0,
                    threshold: 0,
                    value: -0.05,
                    bound: 0.0,
                    level: AlertLevel::Warning
                },
                Alert {
                    entity: 2,
                    threshold: 0,
                    value: 0.25,
                    bound: 0.1,
                    level: AlertLevel::Excellent
                },
            ]
        );
    }
}
