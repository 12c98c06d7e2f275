//! Conversions between wire types (zonerank.v1) and domain or storage types.

use prost_types::Timestamp;
use zonerank_api::{
    convert::{WireEnum, WireEnumError, enum_value},
    v1,
};
use zonerank_domain::{
    catalog::{Direction, Indicator, IndicatorKind},
    entity::{EntityKind, RegionLevel},
};

use crate::error::ServiceError;

/// The path of a field of a list item, e.g. `regions[3].level`: every item field a fault
/// names is spelled here.
pub fn item_field(list: &str, index: usize, field: &str) -> String {
    format!("{list}[{index}].{field}")
}

/// The domain value of the wire enum number in `field`; an undefined number or an unset field
/// is INVALID_ARGUMENT naming `field`.
pub fn enum_field<W, D>(field: impl Into<String>, value: i32) -> Result<D, ServiceError>
where
    W: WireEnum,
    D: TryFrom<W, Error = WireEnumError>,
{
    enum_value::<W, D>(value).map_err(|e| ServiceError::invalid(field, e))
}

/// The domain kind of a wire kind; None for UNSPECIFIED.
pub fn entity_kind(kind: i32) -> Option<EntityKind> {
    enum_value::<v1::EntityKind, _>(kind).ok()
}

/// The wire kind of a domain kind.
pub fn entity_kind_to_wire(kind: EntityKind) -> v1::EntityKind {
    kind.into()
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
    enum_value::<v1::RegionLevel, _>(level).ok()
}

/// The wire level of a domain level.
pub fn region_level_to_wire(level: RegionLevel) -> v1::RegionLevel {
    level.into()
}

/// The domain direction of a wire direction; None for UNSPECIFIED.
pub fn direction(direction: i32) -> Option<Direction> {
    enum_value::<v1::Direction, _>(direction).ok()
}

/// The domain kind of a wire indicator kind; None for UNSPECIFIED.
pub fn indicator_kind(kind: i32) -> Option<IndicatorKind> {
    enum_value::<v1::IndicatorKind, _>(kind).ok()
}

/// The wire form of a catalog indicator.
pub fn indicator_to_wire(indicator: &Indicator, builtin: bool) -> v1::Indicator {
    v1::Indicator {
        code: indicator.code.clone(),
        name_zh: indicator.name_zh.clone(),
        name_en: indicator.name_en.clone(),
        unit: indicator.unit.symbol.to_string(),
        kind: v1::IndicatorKind::from(indicator.kind) as i32,
        direction: v1::Direction::from(indicator.direction) as i32,
        builtin,
    }
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

    #[test]
    fn an_undefined_or_unset_enum_is_refused_naming_its_field() {
        let field = item_field("zones", 3, "kind");
        assert_eq!(field, "zones[3].kind");
        let level: RegionLevel =
            enum_field::<v1::RegionLevel, _>(item_field("regions", 0, "level"), 2).unwrap();
        assert_eq!(level, RegionLevel::City);
        for (value, reason) in [(7, "7 is not a defined ZoneKind value"), (0, "must be set")] {
            let e = enum_field::<v1::ZoneKind, zonerank_domain::entity::ZoneKind>(&field, value)
                .unwrap_err();
            let ServiceError::InvalidArgument { violations, .. } = e else {
                panic!("{e:?}")
            };
            assert_eq!(violations[0].field, "zones[3].kind");
            assert!(violations[0].reason.contains(reason), "{violations:?}");
        }
    }
}
