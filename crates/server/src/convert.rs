//! Conversions between wire types (zonerank.v1) and domain or storage types.

use prost_types::Timestamp;
use zonerank_api::v1;
use zonerank_domain::{
    catalog::{Direction, Indicator, IndicatorKind},
    entity::{EntityKind, RegionLevel},
};

/// The domain kind of a wire kind; None for UNSPECIFIED.
pub fn entity_kind(kind: i32) -> Option<EntityKind> {
    match v1::EntityKind::try_from(kind).ok()? {
        v1::EntityKind::Unspecified => None,
        v1::EntityKind::Region => Some(EntityKind::Region),
        v1::EntityKind::Zone => Some(EntityKind::Zone),
        v1::EntityKind::Enterprise => Some(EntityKind::Enterprise),
        v1::EntityKind::Cluster => Some(EntityKind::Cluster),
        v1::EntityKind::Project => Some(EntityKind::Project),
    }
}

/// The wire kind of a domain kind.
pub fn entity_kind_to_wire(kind: EntityKind) -> v1::EntityKind {
    match kind {
        EntityKind::Region => v1::EntityKind::Region,
        EntityKind::Zone => v1::EntityKind::Zone,
        EntityKind::Enterprise => v1::EntityKind::Enterprise,
        EntityKind::Cluster => v1::EntityKind::Cluster,
        EntityKind::Project => v1::EntityKind::Project,
    }
}

/// The `google.rpc.ResourceInfo.resource_type` of an entity kind.
pub fn resource_type(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Region => "zonerank.v1.Region",
        EntityKind::Zone => "zonerank.v1.Zone",
        EntityKind::Enterprise => "zonerank.v1.Enterprise",
        EntityKind::Cluster => "zonerank.v1.Cluster",
        EntityKind::Project => "zonerank.v1.Project",
    }
}

/// The domain level of a wire level; None for UNSPECIFIED.
pub fn region_level(level: i32) -> Option<RegionLevel> {
    match v1::RegionLevel::try_from(level).ok()? {
        v1::RegionLevel::Unspecified => None,
        v1::RegionLevel::Province => Some(RegionLevel::Province),
        v1::RegionLevel::City => Some(RegionLevel::City),
        v1::RegionLevel::County => Some(RegionLevel::County),
    }
}

/// The wire level of a domain level.
pub fn region_level_to_wire(level: RegionLevel) -> v1::RegionLevel {
    match level {
        RegionLevel::Province => v1::RegionLevel::Province,
        RegionLevel::City => v1::RegionLevel::City,
        RegionLevel::County => v1::RegionLevel::County,
    }
}

/// The domain direction of a wire direction; None for UNSPECIFIED.
pub fn direction(direction: i32) -> Option<Direction> {
    match v1::Direction::try_from(direction).ok()? {
        v1::Direction::Unspecified => None,
        v1::Direction::HigherIsBetter => Some(Direction::HigherIsBetter),
        v1::Direction::LowerIsBetter => Some(Direction::LowerIsBetter),
    }
}

/// The domain kind of a wire indicator kind; None for UNSPECIFIED.
pub fn indicator_kind(kind: i32) -> Option<IndicatorKind> {
    match v1::IndicatorKind::try_from(kind).ok()? {
        v1::IndicatorKind::Unspecified => None,
        v1::IndicatorKind::Flow => Some(IndicatorKind::Flow),
        v1::IndicatorKind::Stock => Some(IndicatorKind::Stock),
        v1::IndicatorKind::Rate => Some(IndicatorKind::Rate),
    }
}

/// The wire form of a catalog indicator.
pub fn indicator_to_wire(indicator: &Indicator, builtin: bool) -> v1::Indicator {
    v1::Indicator {
        code: indicator.code.clone(),
        name_zh: indicator.name_zh.clone(),
        name_en: indicator.name_en.clone(),
        unit: indicator.unit.symbol.to_string(),
        kind: match indicator.kind {
            IndicatorKind::Flow => v1::IndicatorKind::Flow,
            IndicatorKind::Stock => v1::IndicatorKind::Stock,
            IndicatorKind::Rate => v1::IndicatorKind::Rate,
        } as i32,
        direction: match indicator.direction {
            Direction::HigherIsBetter => v1::Direction::HigherIsBetter,
            Direction::LowerIsBetter => v1::Direction::LowerIsBetter,
        } as i32,
        builtin,
    }
}

/// A wire enum's value name without its prefix ("ZONE_KIND_HIGH_TECH_ZONE" → "HIGH_TECH_ZONE").
pub fn enum_suffix(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

/// Microseconds since the epoch of a timestamp.
pub fn timestamp_micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1000)
}

/// The timestamp of microseconds since the epoch.
pub fn micros_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_micros() {
        for micros in [0, 1, -1, 1_700_000_000_123_456, -1_500_000] {
            assert_eq!(timestamp_micros(&micros_timestamp(micros)), micros);
        }
    }

    #[test]
    fn every_wire_kind_but_unspecified_maps() {
        assert_eq!(entity_kind(0), None);
        for k in 1..=5 {
            let kind = entity_kind(k).unwrap();
            assert_eq!(entity_kind_to_wire(kind) as i32, k);
        }
        assert_eq!(entity_kind(99), None);
    }
}
