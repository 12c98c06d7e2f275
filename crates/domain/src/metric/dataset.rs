//! An in-memory dataset the metrics service fills from a few bulk queries and evaluates over.
//!
//! It holds up to tens of millions of values, so each is one 16-byte entry of a hash map: the
//! key packs (entity, interned indicator, start month, span length) into a `u64`, and a lookup
//! by indicator code allocates nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::entity::{EntityKind, ProjectStatus};
use crate::period::{MIN_YEAR, Period};

use super::eval::{EntityIdx, MetricData, ProjectFigures};
use super::expr::LAND_AREA;

/// Months from year 0 to January of the first supported year; span starts count from here.
const ORDINAL_BASE: i64 = MIN_YEAR as i64 * 12;
/// Span starts fit in 12 bits: 4096 months reach past the last supported year.
const START_LIMIT: i64 = 1 << 12;
/// How far back a stock is carried forward: the 12 months ending with the period's last month.
///
/// Not 12 full months before it, so that a stock asked for 2014 never reads 2013's year-end
/// figure and a year-on-year comparison never compares a figure with itself.
const STOCK_WINDOW_MONTHS: i32 = 11;

/// An interned indicator code; at most 65,536 distinct codes per dataset.
type IndicatorId = u16;

/// One observation of a stock series: (end month, start month, value), months counted from
/// January of [`MIN_YEAR`].
type StockObservation = (i32, i32, f64);

/// Figures by entity, indicator and span, with the parent and zone structure between entities.
#[derive(Debug, Default)]
pub struct Dataset {
    /// Entity ids per kind, in [`EntityKind::ALL`] order.
    ids: [foldhash::HashMap<String, EntityIdx>; 5],
    kinds: Vec<EntityKind>,
    parents: Vec<Option<EntityIdx>>,
    zones: HashMap<EntityIdx, Vec<EntityIdx>>,
    indicators: foldhash::HashMap<String, IndicatorId>,
    /// Whether each interned indicator is read at the end of a span.
    stock: Vec<bool>,
    values: HashMap<u64, f64, BuildHasherDefault<KeyHasher>>,
    /// Stock observations per (entity, indicator), sorted, for reading at the end of a span.
    stock_series: HashMap<u64, Vec<StockObservation>, BuildHasherDefault<KeyHasher>>,
    /// Project figures by (zone, status, start month, end month).
    projects: HashMap<(EntityIdx, ProjectStatus, i32, i32), ProjectFigures>,
    /// Whether the zones' projects were read, so that a zone without any has zero of each.
    projects_read: bool,
}

impl Dataset {
    /// An empty dataset; `land_area` is read as a stock from the start.
    pub fn new() -> Dataset {
        let mut dataset = Dataset::default();
        dataset.set_stock_indicators(std::iter::empty());
        dataset
    }

    /// The index of the entity, adding it when new; adding it again returns the same index.
    pub fn add_entity(&mut self, kind: EntityKind, id: &str) -> EntityIdx {
        if let Some(&index) = self.ids[kind_slot(kind)].get(id) {
            return index;
        }
        let index = EntityIdx::try_from(self.kinds.len())
            .expect("a dataset holds fewer than 2^32 entities");
        self.ids[kind_slot(kind)].insert(id.to_owned(), index);
        self.kinds.push(kind);
        self.parents.push(None);
        index
    }

    /// The index of an entity already added.
    pub fn index(&self, kind: EntityKind, id: &str) -> Option<EntityIdx> {
        self.ids[kind_slot(kind)].get(id).copied()
    }

    /// The kind of an entity, if it was added.
    pub fn kind(&self, entity: EntityIdx) -> Option<EntityKind> {
        self.kinds.get(entity as usize).copied()
    }

    /// Number of entities added.
    pub fn entity_count(&self) -> usize {
        self.kinds.len()
    }

    /// Records the region `child` lies in; ignored for an entity never added.
    pub fn set_parent(&mut self, child: EntityIdx, parent: EntityIdx) {
        if let Some(slot) = self.parents.get_mut(child as usize) {
            *slot = Some(parent);
        }
    }

    /// Records the zones inside `region`, at any depth.
    pub fn set_zones_within(&mut self, region: EntityIdx, zones: Vec<EntityIdx>) {
        self.zones.insert(region, zones);
    }

    /// Marks the indicators read at the end of a span (employees, land area); replaces any
    /// earlier marking, keeps `land_area` marked, and re-indexes values already inserted.
    pub fn set_stock_indicators(&mut self, codes: impl IntoIterator<Item = String>) {
        self.stock.iter_mut().for_each(|stock| *stock = false);
        for code in codes.into_iter().chain([LAND_AREA.to_owned()]) {
            if let Some(id) = self.intern(&code) {
                self.stock[usize::from(id)] = true;
            }
        }
        self.stock_series.clear();
        for (&key, &value) in &self.values {
            let (entity, indicator, start, end) = unpack(key);
            if self.stock[usize::from(indicator)] {
                self.stock_series
                    .entry(series_key(entity, indicator))
                    .or_default()
                    .push((end, start, value));
            }
        }
        for series in self.stock_series.values_mut() {
            series.sort_by_key(|&(end, start, _)| (end, start));
        }
    }

    /// Reserves room for `additional` more values.
    pub fn reserve(&mut self, additional: usize) {
        self.values.reserve(additional);
    }

    /// Stores a value, replacing one for the same entity, indicator and span; returns false,
    /// storing nothing, for a value that is not finite or a period outside 1900–2200.
    pub fn insert(
        &mut self,
        entity: EntityIdx,
        indicator: &str,
        period: Period,
        value: f64,
    ) -> bool {
        let Some((start, end)) = span(&period) else {
            return false;
        };
        if !value.is_finite() {
            return false;
        }
        let Some(id) = self.intern(indicator) else {
            return false;
        };
        self.values.insert(pack(entity, id, start, end), value);
        if self.stock[usize::from(id)] {
            let series = self.stock_series.entry(series_key(entity, id)).or_default();
            match series.binary_search_by_key(&(end, start), |&(e, s, _)| (e, s)) {
                Ok(at) => series[at].2 = value,
                Err(at) => series.insert(at, (end, start, value)),
            }
        }
        true
    }

    /// Records that the zones' projects are read: from now on a zone without a project at a
    /// status has zero of them rather than no figure.
    pub fn mark_projects_read(&mut self) {
        self.projects_read = true;
    }

    /// Adds one project of `zone` holding `status` over `period`; returns false, storing
    /// nothing, for a period outside 1900–2200 or an amount that is not finite.
    pub fn add_project(
        &mut self,
        zone: EntityIdx,
        status: ProjectStatus,
        period: Period,
        planned_investment: f64,
        completed_investment: f64,
    ) -> bool {
        let Some((start, end)) = span(&period) else {
            return false;
        };
        if !(planned_investment.is_finite() && completed_investment.is_finite()) {
            return false;
        }
        self.projects
            .entry((zone, status, start, end))
            .or_default()
            .add(planned_investment, completed_investment);
        true
    }

    /// Number of values stored.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn intern(&mut self, code: &str) -> Option<IndicatorId> {
        if let Some(&id) = self.indicators.get(code) {
            return Some(id);
        }
        let id = IndicatorId::try_from(self.indicators.len()).ok()?;
        self.indicators.insert(code.to_owned(), id);
        self.stock.push(false);
        Some(id)
    }

    /// A stock's latest observation ending within the window before `end`; among spans ending
    /// in the same month, the longest.
    fn stock_value(&self, entity: EntityIdx, indicator: IndicatorId, end: i32) -> Option<f64> {
        let series = self.stock_series.get(&series_key(entity, indicator))?;
        let upto = series.partition_point(|&(e, _, _)| e <= end);
        let latest_end = series.get(upto.checked_sub(1)?)?.0;
        if latest_end < end - STOCK_WINDOW_MONTHS {
            return None;
        }
        let first = series.partition_point(|&(e, _, _)| e < latest_end);
        Some(series[first].2)
    }
}

impl MetricData for Dataset {
    fn value(&self, entity: EntityIdx, indicator: &str, period: &Period) -> Option<f64> {
        let id = *self.indicators.get(indicator)?;
        let (start, end) = span(period)?;
        if let Some(&value) = self.values.get(&pack(entity, id, start, end)) {
            return Some(value);
        }
        if self.stock[usize::from(id)] {
            return self.stock_value(entity, id, end);
        }
        None
    }

    fn parent(&self, entity: EntityIdx) -> Option<EntityIdx> {
        self.parents.get(entity as usize).copied().flatten()
    }

    fn zones_within(&self, region: EntityIdx) -> Option<&[EntityIdx]> {
        match self.zones.get(&region) {
            Some(zones) => Some(zones),
            // A region whose zones were never listed has none, which is not "not a region".
            None if self.kind(region) == Some(EntityKind::Region) => Some(&[]),
            None => None,
        }
    }

    fn projects(
        &self,
        zone: EntityIdx,
        status: ProjectStatus,
        period: &Period,
    ) -> Option<ProjectFigures> {
        if !self.projects_read {
            return None;
        }
        let (start, end) = span(period)?;
        Some(
            self.projects
                .get(&(zone, status, start, end))
                .copied()
                .unwrap_or_default(),
        )
    }
}

fn kind_slot(kind: EntityKind) -> usize {
    EntityKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("EntityKind::ALL lists every kind")
}

/// The span's first and last month counted from January of [`MIN_YEAR`], if representable.
fn span(period: &Period) -> Option<(i32, i32)> {
    let start = period.start_ordinal() - ORDINAL_BASE;
    if !(0..START_LIMIT).contains(&start) {
        return None;
    }
    let length = period.end_ordinal() - period.start_ordinal();
    // Both fit: start < 4096 and a span lies inside one year.
    Some((start as i32, (start + length) as i32))
}

/// entity (32 bits) | indicator (16 bits) | start month (12 bits) | span length − 1 (4 bits).
fn pack(entity: EntityIdx, indicator: IndicatorId, start: i32, end: i32) -> u64 {
    (u64::from(entity) << 32)
        | (u64::from(indicator) << 16)
        | ((start as u64) << 4)
        | ((end - start) as u64)
}

fn unpack(key: u64) -> (EntityIdx, IndicatorId, i32, i32) {
    let start = ((key >> 4) & 0xfff) as i32;
    (
        (key >> 32) as EntityIdx,
        ((key >> 16) & 0xffff) as IndicatorId,
        start,
        start + (key & 0xf) as i32,
    )
}

fn series_key(entity: EntityIdx, indicator: IndicatorId) -> u64 {
    (u64::from(entity) << 16) | u64::from(indicator)
}

/// Hashes the packed `u64` keys with a fast full-avalanche mix (MurmurHash3's finalizer).
///
/// The keys are our own indices, not user input, so SipHash's flooding resistance buys
/// nothing, and its cost would dominate lookups over millions of values.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    fn zone_with(indicator: &str, values: &[(&str, f64)]) -> (Dataset, EntityIdx) {
        let mut data = Dataset::new();
        data.set_stock_indicators(["employees".to_owned()]);
        let zone = data.add_entity(EntityKind::Zone, "411725-CJQ");
        for (period, value) in values {
            assert!(data.insert(zone, indicator, p(period), *value));
        }
        (data, zone)
    }

    #[test]
    fn entities_are_added_once_per_kind_and_id() {
        let mut data = Dataset::new();
        let zone = data.add_entity(EntityKind::Zone, "411725-CJQ");
        let county = data.add_entity(EntityKind::Region, "411725");
        assert_ne!(zone, county);
        assert_eq!(data.add_entity(EntityKind::Zone, "411725-CJQ"), zone);
        // The same id under another kind is another entity.
        let cluster = data.add_entity(EntityKind::Cluster, "411725");
        assert_ne!(cluster, county);
        assert_eq!(data.index(EntityKind::Region, "411725"), Some(county));
        assert_eq!(data.index(EntityKind::Zone, "411725"), None);
        assert_eq!(data.entity_count(), 3);
        assert_eq!(data.kind(county), Some(EntityKind::Region));
    }

    #[test]
    fn parents_and_zones() {
        let mut data = Dataset::new();
        let city = data.add_entity(EntityKind::Region, "410300");
        let county = data.add_entity(EntityKind::Region, "410323");
        let zone = data.add_entity(EntityKind::Zone, "410323-A");
        data.set_parent(zone, county);
        data.set_parent(county, city);
        data.set_zones_within(city, vec![zone]);
        assert_eq!(data.parent(zone), Some(county));
        assert_eq!(data.parent(county), Some(city));
        assert_eq!(data.parent(city), None);
        assert_eq!(data.parent(99), None);
        assert_eq!(data.zones_within(city), Some(&[zone][..]));
        assert_eq!(data.zones_within(county), Some(&[][..]));
        assert_eq!(data.zones_within(zone), None);
        assert_eq!(data.zones_within(99), None);
    }

    #[test]
    fn flows_are_read_for_the_exact_span_only() {
        let (data, zone) = zone_with("revenue", &[("2014-H1", 10.0), ("2014", 25.0)]);
        assert_eq!(data.value(zone, "revenue", &p("2014-H1")), Some(10.0));
        assert_eq!(data.value(zone, "revenue", &p("2014-06-YTD")), Some(10.0));
        assert_eq!(data.value(zone, "revenue", &p("2014")), Some(25.0));
        assert_eq!(data.value(zone, "revenue", &p("2014-Q2")), None);
        assert_eq!(data.value(zone, "revenue", &p("2014-06")), None);
        assert_eq!(data.value(zone, "revenue", &p("2015")), None);
        assert_eq!(data.value(zone, "tax", &p("2014")), None);
        assert_eq!(data.value(zone + 1, "revenue", &p("2014")), None);
    }

    #[test]
    fn stocks_are_read_at_the_end_of_the_span() {
        let (data, zone) = zone_with(
            "employees",
            &[
                ("2013", 900.0),
                ("2014-Q2", 1_000.0),
                ("2014-06", 1_010.0),
                ("2014-09", 1_050.0),
            ],
        );
        // The exact span first.
        assert_eq!(data.value(zone, "employees", &p("2014-06")), Some(1_010.0));
        // Any span ending in June: the longest, 2014-Q2.
        assert_eq!(data.value(zone, "employees", &p("2014-H1")), Some(1_000.0));
        // Else the latest figure before the end, within 12 months (again the longest span).
        assert_eq!(data.value(zone, "employees", &p("2014-08")), Some(1_000.0));
        assert_eq!(data.value(zone, "employees", &p("2014")), Some(1_050.0));
        assert_eq!(data.value(zone, "employees", &p("2014-Q1")), Some(900.0));
        assert_eq!(data.value(zone, "employees", &p("2013-H2")), Some(900.0));
        assert_eq!(
            data.value(zone, "employees", &p("2014-05-YTD")),
            Some(900.0)
        );
        // Nothing after the span's end is read.
        assert_eq!(data.value(zone, "employees", &p("2013-H1")), None);
        // 2013's year-end is 12 months before December 2014's end: too old.
        let (data, zone) = zone_with("employees", &[("2013", 900.0)]);
        assert_eq!(data.value(zone, "employees", &p("2014-11")), Some(900.0));
        assert_eq!(data.value(zone, "employees", &p("2014")), None);
        assert_eq!(data.value(zone, "employees", &p("2014-H2")), None);
    }

    #[test]
    fn land_area_is_always_a_stock() {
        let mut data = Dataset::new();
        data.set_stock_indicators(Vec::new());
        let zone = data.add_entity(EntityKind::Zone, "z");
        data.insert(zone, "land_area", p("2013"), 3_000.0);
        assert_eq!(data.value(zone, "land_area", &p("2014-H1")), Some(3_000.0));
    }

    #[test]
    fn stock_marking_applies_to_values_inserted_before_it() {
        let mut data = Dataset::new();
        let zone = data.add_entity(EntityKind::Zone, "z");
        data.insert(zone, "employees", p("2014-03"), 5.0);
        assert_eq!(data.value(zone, "employees", &p("2014-Q2")), None);
        data.set_stock_indicators(["employees".to_owned()]);
        assert_eq!(data.value(zone, "employees", &p("2014-Q2")), Some(5.0));
        data.set_stock_indicators(Vec::new());
        assert_eq!(data.value(zone, "employees", &p("2014-Q2")), None);
    }

    #[test]
    fn a_later_insert_revises_the_value() {
        let (mut data, zone) = zone_with("employees", &[("2014", 1.0)]);
        assert!(data.insert(zone, "employees", p("2014"), 2.0));
        assert_eq!(data.value(zone, "employees", &p("2014")), Some(2.0));
        assert_eq!(data.value(zone, "employees", &p("2015-01")), Some(2.0));
        assert_eq!(data.len(), 1);
    }

    #[test]
    fn refuses_values_it_cannot_hold() {
        let mut data = Dataset::new();
        let zone = data.add_entity(EntityKind::Zone, "z");
        assert!(!data.insert(zone, "tax", p("2014"), f64::NAN));
        assert!(!data.insert(zone, "tax", p("2014"), f64::INFINITY));
        assert!(!data.insert(zone, "tax", p("1900").shift_years(-1), 1.0));
        assert!(data.is_empty());
        // A period shifted outside the supported years finds nothing, rather than wrapping.
        assert!(data.insert(zone, "tax", p("1900"), 1.0));
        assert_eq!(data.value(zone, "tax", &p("1900").shift_years(-1)), None);
        assert_eq!(data.value(zone, "tax", &p("2200").shift_years(1000)), None);
        assert!(data.insert(zone, "tax", p("2200-12"), 3.0));
        assert_eq!(data.value(zone, "tax", &p("2200-12")), Some(3.0));
    }

    #[test]
    fn keys_round_trip() {
        for (entity, indicator, start, end) in [
            (0, 0, 0, 0),
            (u32::MAX, u16::MAX, 4095, 4095),
            (7, 3, 1368, 1379),
        ] {
            assert_eq!(
                unpack(pack(entity, indicator, start, end)),
                (entity, indicator, start, end)
            );
        }
    }

    /// Run with `cargo test --release -p zonerank-domain -- --ignored`.
    #[test]
    #[ignore = "scale check: ten million values"]
    fn holds_ten_million_values() {
        let mut data = Dataset::new();
        data.reserve(10_000_000);
        let indicators: Vec<String> = (0..20).map(|i| format!("indicator_{i}")).collect();
        let periods: Vec<Period> = (2015..2025)
            .map(|y| Period::full_year(y).unwrap())
            .collect();
        let started = std::time::Instant::now();
        for e in 0..50_000u32 {
            let entity = data.add_entity(EntityKind::Enterprise, &e.to_string());
            for indicator in &indicators {
                for period in &periods {
                    data.insert(entity, indicator, *period, f64::from(e));
                }
            }
        }
        assert_eq!(data.len(), 10_000_000);
        let inserted = started.elapsed();
        let started = std::time::Instant::now();
        let mut sum = 0.0;
        for e in 0..50_000u32 {
            for indicator in &indicators {
                for period in &periods {
                    sum += data.value(e, indicator, period).unwrap();
                }
            }
        }
        assert!(sum > 0.0);
        println!("insert {inserted:?}, lookup {:?}", started.elapsed());
    }
}
