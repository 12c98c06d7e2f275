//! Standings across published periods.
//!
//! What a scheme's standing rules do, period by period, for each entity:
//! - the first published period it appears in is `Entered`, with the stars its run gave;
//! - a disqualifying event (a count above 0) takes the period's stars away: `Disqualified`;
//! - holding stars, failing an entry gate or meeting an exit rule ("bottom N in k of the last
//!   m published periods", the current one included) takes them away: `TitleLost` (摘牌);
//!   without stars the same facts keep it at 0 stars;
//! - otherwise it holds the run's stars, rising at most `max_star_step` levels above the
//!   period before when the scheme sets a step (晋星 one level a year): `Promoted`, and a first-time
//!   promotion when the level is above every level it held before; fewer stars: `Demoted`.

/// An exit rule: `bottom` places in `times` of the last `window` published periods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitRule {
    pub bottom: u32,
    pub times: u32,
    pub window: u32,
    pub label: String,
}

/// The standing rules of a scheme.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StandingRules {
    /// Levels an entity may rise per period; `None` for no limit.
    pub max_star_step: Option<u8>,
    pub exit_rules: Vec<ExitRule>,
}

/// One entity's figures in one published period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityFacts {
    pub id: String,
    /// 0 when the run excluded it.
    pub rank: u32,
    pub score: f64,
    /// The stars the run gave.
    pub stars: u8,
    pub class_label: String,
    /// The first entry gate it fails, if any.
    pub failed_gate: Option<String>,
    /// The disqualifying event it had, if any.
    pub disqualified: Option<String>,
}

/// One published period: its ranked count and its entities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodFacts {
    /// How many entities the run ranked (the bottom places count from it).
    pub ranked: u32,
    pub entities: Vec<EntityFacts>,
}

/// What happened to an entity's standing in a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StandingEvent {
    Entered,
    Promoted,
    Demoted,
    TitleLost,
    Disqualified,
}

/// One entity's standing in one period.
#[derive(Clone, Debug, PartialEq)]
pub struct StandingRow {
    /// The period's position in the input.
    pub period: usize,
    /// The entity's position in that period's facts.
    pub entity: usize,
    pub stars: u8,
    pub events: Vec<StandingEvent>,
    pub first_time_promotion: bool,
    pub note: String,
}

#[derive(Default)]
struct History {
    stars: Option<u8>,
    highest: u8,
    /// (period, rank) of every period the entity appeared in.
    ranks: Vec<(usize, u32)>,
}

/// Whether `history` (with the current period in it) meets `rule` at period `p`.
fn exits(rule: &ExitRule, history: &History, periods: &[PeriodFacts], p: usize) -> bool {
    let first = (p + 1).saturating_sub(rule.window as usize);
    let in_bottom = |&&(q, rank): &&(usize, u32)| {
        q >= first && rank > 0 && rank + rule.bottom > periods[q].ranked
    };
    let now = history
        .ranks
        .last()
        .is_some_and(|last| last.0 == p && in_bottom(&last));
    now && history.ranks.iter().filter(in_bottom).count() as u32 >= rule.times
}

/// The standings of every entity in every period, periods in the order given (oldest first),
/// entities in each period's order.
pub fn standings(rules: &StandingRules, periods: &[PeriodFacts]) -> Vec<StandingRow> {
    let mut histories: std::collections::HashMap<&str, History> = Default::default();
    let mut rows = Vec::new();
    for (p, period) in periods.iter().enumerate() {
        for (e, facts) in period.entities.iter().enumerate() {
            let history = histories.entry(facts.id.as_str()).or_default();
            history.ranks.push((p, facts.rank));
            let mut events = Vec::new();
            let mut note = String::new();
            let held = history.stars.unwrap_or(0);
            if history.stars.is_none() {
                events.push(StandingEvent::Entered);
            }
            let exit = rules
                .exit_rules
                .iter()
                .find(|rule| exits(rule, history, periods, p));
            let stars = if let Some(event) = &facts.disqualified {
                events.push(StandingEvent::Disqualified);
                note = event.clone();
                0
            } else if let Some(reason) = facts
                .failed_gate
                .as_ref()
                .map(|g| format!("entry gate `{g}` not met"))
                .or_else(|| exit.map(|r| r.label.clone()))
            {
                if held > 0 {
                    events.push(StandingEvent::TitleLost);
                    note = reason;
                }
                0
            } else {
                let limited = match (history.stars, rules.max_star_step) {
                    (Some(before), Some(step)) => facts.stars.min(before.saturating_add(step)),
                    _ => facts.stars,
                };
                if limited > held && history.stars.is_some() {
                    events.push(StandingEvent::Promoted);
                } else if limited < held {
                    events.push(StandingEvent::Demoted);
                }
                limited
            };
            let first_time_promotion =
                events.contains(&StandingEvent::Promoted) && stars > history.highest;
            history.stars = Some(stars);
            history.highest = history.highest.max(stars);
            rows.push(StandingRow {
                period: p,
                entity: e,
                stars,
                events,
                first_time_promotion,
                note,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(ranked: u32, entities: &[(&str, u32, u8)]) -> PeriodFacts {
        PeriodFacts {
            ranked,
            entities: entities
                .iter()
                .map(|&(id, rank, stars)| EntityFacts {
                    id: id.into(),
                    rank,
                    stars,
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn summary(
        rows: &[StandingRow],
        periods: &[PeriodFacts],
        id: &str,
    ) -> Vec<(u8, Vec<StandingEvent>, bool)> {
        rows.iter()
            .filter(|r| periods[r.period].entities[r.entity].id == id)
            .map(|r| (r.stars, r.events.clone(), r.first_time_promotion))
            .collect()
    }

    #[test]
    fn one_level_a_period_first_time_demotion_and_bottom_two_in_two_of_three() {
        use StandingEvent::*;
        let rules = StandingRules {
            max_star_step: Some(1),
            exit_rules: vec![ExitRule {
                bottom: 2,
                times: 2,
                window: 3,
                label: "bottom 2 in 2 of the last 3".into(),
            }],
        };
        // Five entities; "e" sinks into the bottom two in periods 2 and 4.
        let periods = vec![
            period(
                5,
                &[
                    ("a", 1, 1),
                    ("b", 2, 2),
                    ("c", 3, 1),
                    ("d", 4, 0),
                    ("e", 5, 1),
                ],
            ),
            period(
                5,
                &[
                    ("a", 1, 3),
                    ("b", 2, 1),
                    ("e", 3, 1),
                    ("c", 4, 1),
                    ("d", 5, 0),
                ],
            ),
            period(
                5,
                &[
                    ("a", 1, 3),
                    ("b", 2, 2),
                    ("c", 3, 1),
                    ("e", 4, 1),
                    ("d", 5, 0),
                ],
            ),
            period(
                5,
                &[
                    ("b", 1, 3),
                    ("a", 2, 3),
                    ("c", 3, 1),
                    ("d", 4, 1),
                    ("e", 5, 1),
                ],
            ),
        ];
        let rows = standings(&rules, &periods);
        // a: 1 → 2 (run said 3; one level a period) → 3 → 3; both rises first-time.
        assert_eq!(
            summary(&rows, &periods, "a"),
            vec![
                (1, vec![Entered], false),
                (2, vec![Promoted], true),
                (3, vec![Promoted], true),
                (3, vec![], false),
            ]
        );
        // b: 2 → 1 (demoted) → 2 (promoted, not first time) → 3 (first time).
        assert_eq!(
            summary(&rows, &periods, "b"),
            vec![
                (2, vec![Entered], false),
                (1, vec![Demoted], false),
                (2, vec![Promoted], false),
                (3, vec![Promoted], true),
            ]
        );
        // d is in the bottom 2 in periods 1, 2 and 3 without stars: nothing to lose; in
        // period 4 it is 4th of 5 (bottom 2 again, 3 of the last 3), so its star is refused.
        assert_eq!(
            summary(&rows, &periods, "d"),
            vec![
                (0, vec![Entered], false),
                (0, vec![], false),
                (0, vec![], false),
                (0, vec![], false),
            ]
        );
        // e: bottom in period 1 (5th), not in 2 (3rd), bottom in 3 (4th): 2 of the last 3 →
        // title lost; bottom again in 4 and nothing left to lose.
        let e = summary(&rows, &periods, "e");
        assert_eq!(e[0], (1, vec![Entered], false));
        assert_eq!(e[1], (1, vec![], false));
        assert_eq!(e[2], (0, vec![TitleLost], false));
        assert_eq!(e[3], (0, vec![], false));
        let lost = rows.iter().find(|r| r.events.contains(&TitleLost)).unwrap();
        assert_eq!(lost.note, "bottom 2 in 2 of the last 3");
    }

    #[test]
    fn a_disqualifying_event_or_a_failed_entry_gate_takes_the_stars() {
        use StandingEvent::*;
        let mut periods = vec![
            period(2, &[("a", 1, 2), ("b", 2, 1)]),
            period(2, &[("a", 1, 2), ("b", 2, 1)]),
        ];
        periods[1].entities[0].disqualified = Some("major safety accident".into());
        periods[1].entities[1].failed_gate = Some("revenue >= 100".into());
        let rows = standings(&StandingRules::default(), &periods);
        assert_eq!(rows[2].stars, 0);
        assert_eq!(rows[2].events, vec![Disqualified]);
        assert_eq!(rows[2].note, "major safety accident");
        assert_eq!(rows[3].stars, 0);
        assert_eq!(rows[3].events, vec![TitleLost]);
        assert_eq!(rows[3].note, "entry gate `revenue >= 100` not met");
    }
}
