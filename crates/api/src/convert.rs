//! Exact conversions between the wire enums of `zonerank.v1` and the domain's: every defined
//! wire value but UNSPECIFIED has one domain value and back, and anything else is refused.
//!
//! The wire carries enums as `i32`; [`enum_value`] reads one, so a number the proto does not
//! define and an unset field are both errors, which the caller names with the field's path.

use zonerank_domain::{
    assessment::{AlertLevel, ObjectionState, PolicyKind, PublicationState, StandingEvent},
    catalog::{Direction, IndicatorKind},
    entity::{EntityKind, ProjectStatus, RegionLevel, ZoneKind},
    metric::Comparator,
    ranking::ReportFormat,
    screening::Comparison,
};

use crate::v1;

/// Why a wire enum value has no domain counterpart.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireEnumError {
    /// The number is not one the proto defines.
    #[error("{value} is not a defined {enum_name} value")]
    Undefined {
        /// The proto enum, e.g. "ZoneKind".
        enum_name: &'static str,
        /// The number sent.
        value: i32,
    },
    /// The field was left UNSPECIFIED (or unset).
    #[error("must be set to a {enum_name} value")]
    Unspecified {
        /// The proto enum, e.g. "ZoneKind".
        enum_name: &'static str,
    },
}

/// A proto enum with a name for errors.
pub trait WireEnum: TryFrom<i32> + Copy {
    /// The proto enum's name, e.g. "ZoneKind".
    const NAME: &'static str;
}

/// The domain value of the wire enum number `value` of enum `W`.
pub fn enum_value<W, D>(value: i32) -> Result<D, WireEnumError>
where
    W: WireEnum,
    D: TryFrom<W, Error = WireEnumError>,
{
    let wire = W::try_from(value).map_err(|_| WireEnumError::Undefined {
        enum_name: W::NAME,
        value,
    })?;
    D::try_from(wire)
}

/// `TryFrom<v1::X> for Domain` refusing UNSPECIFIED, and `From<Domain> for v1::X`.
macro_rules! wire_enum {
    ($wire:ident <=> $domain:ident { $($w:ident <=> $d:ident),+ $(,)? }) => {
        impl WireEnum for v1::$wire {
            const NAME: &'static str = stringify!($wire);
        }

        impl TryFrom<v1::$wire> for $domain {
            type Error = WireEnumError;

            fn try_from(wire: v1::$wire) -> Result<$domain, WireEnumError> {
                match wire {
                    v1::$wire::Unspecified => Err(WireEnumError::Unspecified {
                        enum_name: stringify!($wire),
                    }),
                    $(v1::$wire::$w => Ok($domain::$d),)+
                }
            }
        }

        impl From<$domain> for v1::$wire {
            fn from(domain: $domain) -> v1::$wire {
                match domain {
                    $($domain::$d => v1::$wire::$w,)+
                }
            }
        }
    };
}

wire_enum!(EntityKind <=> EntityKind {
    Region <=> Region,
    Zone <=> Zone,
    Enterprise <=> Enterprise,
    Cluster <=> Cluster,
    Project <=> Project,
});
wire_enum!(RegionLevel <=> RegionLevel {
    Province <=> Province,
    City <=> City,
    County <=> County,
});
wire_enum!(Direction <=> Direction {
    HigherIsBetter <=> HigherIsBetter,
    LowerIsBetter <=> LowerIsBetter,
});
wire_enum!(IndicatorKind <=> IndicatorKind {
    Flow <=> Flow,
    Stock <=> Stock,
    Rate <=> Rate,
});
wire_enum!(ZoneKind <=> ZoneKind {
    AgglomerationZone <=> AgglomerationZone,
    HighTechZone <=> HighTechZone,
    EconomicDevelopmentZone <=> EconomicDevelopmentZone,
    IndustrialPark <=> IndustrialPark,
});
wire_enum!(ProjectStatus <=> ProjectStatus {
    Negotiating <=> Negotiating,
    Signed <=> Signed,
    Started <=> Started,
    UnderConstruction <=> UnderConstruction,
    Completed <=> Completed,
    Planned <=> Planned,
});
wire_enum!(Comparison <=> Comparison {
    Less <=> Less,
    LessOrEqual <=> LessOrEqual,
    Greater <=> Greater,
    GreaterOrEqual <=> GreaterOrEqual,
    Equal <=> Equal,
});
wire_enum!(Comparator <=> Comparator {
    AtLeast <=> AtLeast,
    AtMost <=> AtMost,
});
wire_enum!(ReportFormat <=> ReportFormat {
    Csv <=> Csv,
    Xlsx <=> Xlsx,
    Html <=> Html,
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Every defined number but 0 round-trips; 0 is unspecified and the first number past the
    /// last defined one is undefined, each error naming the enum.
    fn exact<W, D>(defined: i32)
    where
        W: WireEnum + From<D> + Into<i32>,
        D: TryFrom<W, Error = WireEnumError> + Copy + std::fmt::Debug,
    {
        for n in 1..=defined {
            let domain: D = enum_value::<W, D>(n).unwrap();
            assert_eq!(W::from(domain).into(), n, "{} {n}", W::NAME);
        }
        assert_eq!(
            enum_value::<W, D>(0).unwrap_err(),
            WireEnumError::Unspecified { enum_name: W::NAME }
        );
        for undefined in [defined + 1, -1, i32::MAX] {
            let e = enum_value::<W, D>(undefined).unwrap_err();
            assert_eq!(
                e,
                WireEnumError::Undefined {
                    enum_name: W::NAME,
                    value: undefined
                }
            );
            assert!(e.to_string().contains(W::NAME), "{e}");
        }
    }

    #[test]
    fn every_enum_converts_exactly_and_refuses_the_rest() {
        exact::<v1::EntityKind, EntityKind>(5);
        exact::<v1::RegionLevel, RegionLevel>(3);
        exact::<v1::Direction, Direction>(2);
        exact::<v1::IndicatorKind, IndicatorKind>(3);
        exact::<v1::ZoneKind, ZoneKind>(4);
        exact::<v1::ProjectStatus, ProjectStatus>(6);
        exact::<v1::Comparator, Comparator>(2);
        exact::<v1::Comparison, Comparison>(5);
        exact::<v1::ReportFormat, ReportFormat>(3);
    }

    #[test]
    fn domain_names_match_the_wire_names() {
        for kind in ZoneKind::ALL {
            let wire = v1::ZoneKind::from(*kind);
            assert_eq!(wire.as_str_name(), format!("ZONE_KIND_{kind}"));
        }
        for status in ProjectStatus::ALL {
            let wire = v1::ProjectStatus::from(*status);
            assert_eq!(wire.as_str_name(), format!("PROJECT_STATUS_{status}"));
        }
        for level in RegionLevel::ALL {
            let wire = v1::RegionLevel::from(level);
            assert_eq!(wire.as_str_name(), format!("REGION_LEVEL_{level}"));
        }
    }
}
wire_enum!(PolicyKind <=> PolicyKind {
    ElectricitySurcharge <=> ElectricitySurcharge,
    LandSupply <=> LandSupply,
    Subsidy <=> Subsidy,
    Other <=> Other,
});
wire_enum!(PublicationState <=> PublicationState {
    PublicNotice <=> PublicNotice,
    Final <=> Final,
    Superseded <=> Superseded,
});
wire_enum!(ObjectionState <=> ObjectionState {
    Open <=> Open,
    Accepted <=> Accepted,
    Rejected <=> Rejected,
});
wire_enum!(AlertLevel <=> AlertLevel {
    Warning <=> Warning,
    Excellent <=> Excellent,
});
wire_enum!(StandingEvent <=> StandingEvent {
    Entered <=> Entered,
    Promoted <=> Promoted,
    Demoted <=> Demoted,
    TitleLost <=> TitleLost,
    Disqualified <=> Disqualified,
});
