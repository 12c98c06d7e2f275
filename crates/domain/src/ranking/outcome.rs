//! The result of a ranking run, in columns: one vector per field over the entities (or over
//! the cohort for the per-criterion values), and small tables for the repeated texts (class
//! labels, veto labels, exclusion reasons, group keys). Nothing is allocated per entity; an
//! [`Entry`] is a view of one entity's row.

/// No cohort position / no reason / no class.
pub(crate) const NONE: u32 = u32::MAX;

/// The weights used and every entity's result, by input index.
///
/// An excluded entity has score 0, rank 0, percentile 0, no stars, an empty class and no
/// per-criterion values; its bonus, vetoes and previous rank are still reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RankingOutcome {
    /// The weight of each criterion (sums to 1; empty when nothing was ranked).
    pub weights: Vec<f64>,
    /// The input index of each cohort position (the included entities in input order).
    pub cohort: Vec<usize>,
    /// Per entity, its cohort position or `NONE`.
    pub(crate) position: Vec<u32>,
    /// Per entity: the aggregate score plus bonuses and deductions (0 when excluded).
    pub score: Vec<f64>,
    /// Per entity: competition rank in the cohort (ties share: 1, 2, 2, 4; 0 when excluded).
    pub rank: Vec<u32>,
    /// Per entity: the share of the cohort ranked at or below it, in percent (best = 100).
    pub percentile: Vec<f64>,
    /// Per entity: the star level, 0 when none.
    pub stars: Vec<u8>,
    /// Per entity: the sum of bonus and deduction points.
    pub bonus: Vec<f64>,
    /// Per entity: the class as an index into `class_labels`, or `NONE`.
    pub(crate) class: Vec<u32>,
    pub(crate) class_labels: Vec<String>,
    /// Per entity: why it was left out, an index into `reasons`, or `NONE`.
    pub(crate) excluded: Vec<u32>,
    pub(crate) reasons: Vec<String>,
    /// The previous period's rank and score per entity (empty: no previous run).
    pub(crate) previous: Vec<Option<(u32, f64)>>,
    /// `[veto][entity]`: whether the veto applies.
    pub(crate) vetoed: Vec<Vec<bool>>,
    pub(crate) veto_labels: Vec<String>,
    /// `[criterion][cohort position]`: normalised value after filling.
    pub normalized: Vec<Vec<f64>>,
    /// `[criterion][cohort position]`: the criterion's part of the aggregate score.
    pub contributions: Vec<Vec<f64>>,
    /// `[criterion][cohort position]`: whether the value was filled by the missing-data policy.
    pub filled: Vec<Vec<bool>>,
    /// The group keys (copied from the input) and, aligned with their ids, the entity's rank
    /// within each group (0 when the entity is excluded).
    pub(crate) groups: super::groups::Groups,
    pub(crate) group_rank: Vec<u32>,
}

impl RankingOutcome {
    /// The number of entities (included or not).
    pub fn len(&self) -> usize {
        self.score.len()
    }

    /// Whether there were no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of ranked entities.
    pub fn included_count(&self) -> usize {
        self.cohort.len()
    }

    /// Entity `e`'s cohort position, None when it was excluded.
    pub fn position_of(&self, e: usize) -> Option<usize> {
        let p = self.position[e];
        (p != NONE).then_some(p as usize)
    }

    /// A view of entity `e`'s result.
    pub fn entry(&self, e: usize) -> Entry<'_> {
        let position = self.position_of(e);
        let previous = self.previous.get(e).copied().flatten();
        let rank = self.rank[e];
        Entry {
            outcome: self,
            index: e,
            position,
            included: position.is_some(),
            score: self.score[e],
            rank,
            percentile: self.percentile[e],
            stars: self.stars[e],
            bonus: self.bonus[e],
            class_label: match self.class[e] {
                NONE => "",
                c => &self.class_labels[c as usize],
            },
            excluded_because: match self.excluded[e] {
                NONE => None,
                r => Some(&self.reasons[r as usize]),
            },
            previous_rank: previous.map(|(r, _)| r),
            previous_score: previous.map(|(_, s)| s),
            rank_change: previous
                .filter(|_| position.is_some())
                .map(|(r, _)| i64::from(r) - i64::from(rank)),
        }
    }

    /// Every entity's view, in input order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> + '_ {
        (0..self.len()).map(|e| self.entry(e))
    }
}

/// One entity's result, borrowed from the outcome's columns.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'o> {
    outcome: &'o RankingOutcome,
    index: usize,
    position: Option<usize>,
    /// Whether the entity was ranked.
    pub included: bool,
    /// Why it was not, e.g. which criterion is missing.
    pub excluded_because: Option<&'o str>,
    /// The aggregate score plus bonuses and deductions.
    pub score: f64,
    /// Competition rank in the cohort.
    pub rank: u32,
    /// The share of the cohort ranked at or below this entity, in percent.
    pub percentile: f64,
    /// The star level, 0 when none.
    pub stars: u8,
    /// The class label, e.g. `A` (empty when excluded).
    pub class_label: &'o str,
    /// The previous period's rank.
    pub previous_rank: Option<u32>,
    /// The previous period's score (for ranking by score change).
    pub previous_score: Option<f64>,
    /// Previous rank − current rank: positive means the entity moved up.
    pub rank_change: Option<i64>,
    /// The sum of bonus and deduction points.
    pub bonus: f64,
}

impl<'o> Entry<'o> {
    /// The entity's input index.
    pub fn index(&self) -> usize {
        self.index
    }

    fn cell<T: Copy + Default>(&self, column: &'o [Vec<T>], j: usize) -> T {
        match (self.position, column.get(j)) {
            (Some(p), Some(column)) => column[p],
            _ => T::default(),
        }
    }

    /// Normalised value of criterion `j` after filling (0 when excluded).
    pub fn normalized(&self, j: usize) -> f64 {
        self.cell(&self.outcome.normalized, j)
    }

    /// Criterion `j`'s part of the aggregate score (0 when excluded).
    pub fn contribution(&self, j: usize) -> f64 {
        self.cell(&self.outcome.contributions, j)
    }

    /// Whether criterion `j` was filled by the missing-data policy (false when excluded).
    pub fn filled(&self, j: usize) -> bool {
        self.cell(&self.outcome.filled, j)
    }

    /// The normalised values per criterion (none when excluded).
    pub fn normalized_values(&self) -> impl Iterator<Item = f64> + 'o {
        let (p, columns) = (self.position, &self.outcome.normalized);
        p.into_iter()
            .flat_map(move |p| columns.iter().map(move |c| c[p]))
    }

    /// The filled flags per criterion (none when excluded).
    pub fn filled_values(&self) -> impl Iterator<Item = bool> + 'o {
        let (p, columns) = (self.position, &self.outcome.filled);
        p.into_iter()
            .flat_map(move |p| columns.iter().map(move |c| c[p]))
    }

    /// Labels of the vetoes that apply (whether or not they bar anything).
    pub fn vetoes(&self) -> impl Iterator<Item = &'o str> + 'o {
        let (e, o) = (self.index, self.outcome);
        o.vetoed
            .iter()
            .zip(&o.veto_labels)
            .filter(move |(column, _)| column[e])
            .map(|(_, label)| label.as_str())
    }

    /// Rank within each of the entity's group keys, in the order the keys were given (none
    /// when excluded).
    pub fn group_ranks(&self) -> impl Iterator<Item = (&'o str, u32)> + 'o {
        let o = self.outcome;
        let span = if self.included && !o.groups.is_empty() {
            o.groups.span(self.index)
        } else {
            0..0
        };
        span.map(move |i| (o.groups.name(o.groups.all_ids()[i]), o.group_rank[i]))
    }
}
