//! The things that are measured and ranked, and the rules for their ids.
//!
//! Ids come from national standards where one exists (GB/T 2260 region codes, GB 32100
//! credit codes) so that data from different government systems joins on them; a typo in
//! one would silently split an entity in two, hence the strict checks.

use std::fmt;
use std::str::FromStr;

/// Why an entity kind, region level or id was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The entity kind is not one of the five kinds.
    #[error("unknown entity kind '{input}'; expected REGION, ZONE, ENTERPRISE, CLUSTER or PROJECT")]
    UnknownKind {
        /// The text given.
        input: String,
    },
    /// The region level is not province, city or county.
    #[error("unknown region level '{input}'; expected PROVINCE, CITY or COUNTY")]
    UnknownRegionLevel {
        /// The text given.
        input: String,
    },
    /// A zone kind or project status that is not one of its names.
    #[error("unknown {what} '{input}'; expected {expected}")]
    UnknownName {
        /// What was named, e.g. "zone kind".
        what: &'static str,
        /// The text given.
        input: String,
        /// The names allowed.
        expected: String,
    },
    /// No id was given.
    #[error("the {kind} id is missing")]
    Empty {
        /// Kind of entity the id is for.
        kind: EntityKind,
    },
    /// The id has the wrong number of characters.
    #[error("'{id}' has {actual} characters, but a {what} has exactly {expected}")]
    WrongLength {
        /// What the id is, e.g. "region code".
        what: &'static str,
        /// The id given.
        id: String,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// The id is longer than allowed.
    #[error("a {kind} id may have at most {max} characters, but '{id}' has {actual}")]
    TooLong {
        /// Kind of entity the id is for.
        kind: EntityKind,
        /// The id given.
        id: String,
        /// Maximum length.
        max: usize,
        /// Length found.
        actual: usize,
    },
    /// A character is not allowed at its position.
    #[error("{what} '{id}' has '{found}' at position {position}; {allowed}")]
    BadCharacter {
        /// What the id is, e.g. "region code".
        what: &'static str,
        /// The id given.
        id: String,
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
        /// Which characters are allowed there.
        allowed: &'static str,
    },
    /// The first two digits of a region code name no province.
    #[error(
        "region code '{id}' starts with {prefix}, which is not a GB/T 2260 province code \
         (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82)"
    )]
    UnknownProvince {
        /// The id given.
        id: String,
        /// Its first two digits.
        prefix: String,
    },
    /// The last character of a credit code does not match the others.
    #[error(
        "unified social credit code '{id}' fails its check: the check character (position 18) \
         should be '{expected}' but is '{found}'; some character is mistyped"
    )]
    CheckCharacter {
        /// The id given.
        id: String,
        /// Check character computed from the first 17.
        expected: char,
        /// Check character given.
        found: char,
    },
}

/// The kinds of entity that carry statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// An administrative region (province, city, county).
    Region,
    /// An industrial zone or park.
    Zone,
    /// A firm, identified by its credit code.
    Enterprise,
    /// An industry cluster in a region or zone.
    Cluster,
    /// An investment project in a zone.
    Project,
}

impl EntityKind {
    /// Every kind, in API order.
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Region,
        EntityKind::Zone,
        EntityKind::Enterprise,
        EntityKind::Cluster,
        EntityKind::Project,
    ];

    /// The upper-case API name, e.g. "ZONE".
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Region => "REGION",
            EntityKind::Zone => "ZONE",
            EntityKind::Enterprise => "ENTERPRISE",
            EntityKind::Cluster => "CLUSTER",
            EntityKind::Project => "PROJECT",
        }
    }

    /// Reads `ZONE`, `zone` or the protobuf enum name `ENTITY_KIND_ZONE`.
    pub fn parse(s: &str) -> Result<EntityKind, IdError> {
        let name = enum_name(s, "ENTITY_KIND_");
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| IdError::UnknownKind {
                input: s.trim().to_owned(),
            })
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityKind {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityKind::parse(s)
    }
}

/// The administrative level of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionLevel {
    /// Province, autonomous region or municipality (省级).
    Province,
    /// Prefecture-level city (地级).
    City,
    /// County or county-level district (县级).
    County,
}

impl RegionLevel {
    /// Every level, from the top down.
    pub const ALL: [RegionLevel; 3] = [
        RegionLevel::Province,
        RegionLevel::City,
        RegionLevel::County,
    ];

    /// The upper-case API name, e.g. "CITY".
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Province => "PROVINCE",
            RegionLevel::City => "CITY",
            RegionLevel::County => "COUNTY",
        }
    }

    /// Reads `CITY`, `city`, the protobuf name `REGION_LEVEL_CITY`, or 省/市/县.
    pub fn parse(s: &str) -> Result<RegionLevel, IdError> {
        let name = enum_name(s, "REGION_LEVEL_");
        let level = match name.as_str() {
            "省" => Some(RegionLevel::Province),
            "市" => Some(RegionLevel::City),
            "县" => Some(RegionLevel::County),
            _ => Self::ALL.into_iter().find(|level| level.as_str() == name),
        };
        level.ok_or_else(|| IdError::UnknownRegionLevel {
            input: s.trim().to_owned(),
        })
    }
}

impl fmt::Display for RegionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionLevel {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionLevel::parse(s)
    }
}

/// Declares a closed set of upper-case names, read with or without their protobuf prefix.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, $prefix:literal,
     { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the API's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The upper-case API name without prefix.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Reads the name, in any case, with or without its protobuf prefix.
            pub fn parse(s: &str) -> Result<$name, IdError> {
                let name = enum_name(s, $prefix);
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == name)
                    .ok_or_else(|| IdError::UnknownName {
                        what: $what,
                        input: s.trim().to_owned(),
                        expected: Self::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

named_enum!(
    /// The kind of an industrial zone.
    ZoneKind, "zone kind", "ZONE_KIND_", {
        /// 产业集聚区
        AgglomerationZone => "AGGLOMERATION_ZONE",
        /// 高新技术产业开发区
        HighTechZone => "HIGH_TECH_ZONE",
        /// 经济技术开发区
        EconomicDevelopmentZone => "ECONOMIC_DEVELOPMENT_ZONE",
        /// 工业园区
        IndustrialPark => "INDUSTRIAL_PARK",
    }
);

named_enum!(
    /// Where an investment project stands.
    ProjectStatus, "project status", "PROJECT_STATUS_", {
        /// 在谈
        Negotiating => "NEGOTIATING",
        /// 签约
        Signed => "SIGNED",
        /// 开工
        Started => "STARTED",
        /// 在建
        UnderConstruction => "UNDER_CONSTRUCTION",
        /// 竣工
        Completed => "COMPLETED",
        /// 拟建: planned, before any negotiation
        Planned => "PLANNED",
    }
);

/// Upper-cases and trims an enum spelling and drops its protobuf prefix.
fn enum_name(s: &str, prefix: &str) -> String {
    let upper = s.trim().to_ascii_uppercase();
    match upper.strip_prefix(prefix) {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// Longest zone, cluster or project id; long enough for composed ids like `410300-equipment`.
pub const MAX_FREE_ID_LEN: usize = 64;

/// Province-level prefixes of GB/T 2260 (incl. Taiwan 71, Hong Kong 81, Macao 82).
const PROVINCE_CODES: [u8; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Characters of a unified social credit code, in the order that gives their values;
/// I, O, Z, S and V are left out because they are easily confused with digits.
pub const CREDIT_CODE_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// GB 32100-2015 weights of the first 17 characters (3^i mod 31).
const CREDIT_CODE_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

const CREDIT_CODE: &str = "unified social credit code";
const CREDIT_CODE_ALLOWED: &str =
    "only digits and the letters A–H, J–N, P–R, T, U, W–Y are allowed (never I, O, Z, S or V)";

/// Checks an id for its entity kind and returns it normalized (trimmed; credit codes upper-cased).
pub fn validate_id(kind: EntityKind, id: &str) -> Result<String, IdError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(IdError::Empty { kind });
    }
    match kind {
        EntityKind::Region => validate_region_code(id),
        EntityKind::Enterprise => validate_credit_code(id),
        EntityKind::Zone | EntityKind::Cluster | EntityKind::Project => validate_free_id(kind, id),
    }
}

fn validate_region_code(id: &str) -> Result<String, IdError> {
    const WHAT: &str = "region code";
    let length = id.chars().count();
    if length != 6 {
        return Err(IdError::WrongLength {
            what: WHAT,
            id: id.to_owned(),
            expected: 6,
            actual: length,
        });
    }
    if let Some((index, found)) = id.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(IdError::BadCharacter {
            what: WHAT,
            id: id.to_owned(),
            position: index + 1,
            found,
            allowed: "only digits are allowed (GB/T 2260 codes have six)",
        });
    }
    let prefix = &id[..2];
    let province: u8 = prefix.parse().unwrap_or(0);
    if !PROVINCE_CODES.contains(&province) {
        return Err(IdError::UnknownProvince {
            id: id.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    Ok(id.to_owned())
}

fn validate_free_id(kind: EntityKind, id: &str) -> Result<String, IdError> {
    let length = id.chars().count();
    if length > MAX_FREE_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            id: id.to_owned(),
            max: MAX_FREE_ID_LEN,
            actual: length,
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some((index, found)) = id.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        return Err(IdError::BadCharacter {
            what: free_id_name(kind),
            id: id.to_owned(),
            position: index + 1,
            found,
            allowed: "only ASCII letters, digits, '.', '_' and '-' are allowed",
        });
    }
    Ok(id.to_owned())
}

fn free_id_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Cluster => "cluster id",
        EntityKind::Project => "project id",
        _ => "zone id",
    }
}

fn validate_credit_code(id: &str) -> Result<String, IdError> {
    let code = id.to_ascii_uppercase();
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(IdError::WrongLength {
            what: CREDIT_CODE,
            id: code,
            expected: 18,
            actual: chars.len(),
        });
    }
    let first17: String = chars[..17].iter().collect();
    let expected = credit_code_check_char(&first17).map_err(|err| with_id(err, &code))?;
    let found = chars[17];
    if credit_char_value(found).is_none() {
        return Err(IdError::BadCharacter {
            what: CREDIT_CODE,
            id: code,
            position: 18,
            found,
            allowed: CREDIT_CODE_ALLOWED,
        });
    }
    if found != expected {
        return Err(IdError::CheckCharacter {
            id: code,
            expected,
            found,
        });
    }
    Ok(code)
}

/// Reports errors about the first 17 characters against the whole code the user typed.
fn with_id(err: IdError, code: &str) -> IdError {
    match err {
        IdError::BadCharacter {
            what,
            position,
            found,
            allowed,
            ..
        } => IdError::BadCharacter {
            what,
            id: code.to_owned(),
            position,
            found,
            allowed,
        },
        other => other,
    }
}

fn credit_char_value(c: char) -> Option<u32> {
    CREDIT_CODE_CHARSET
        .chars()
        .position(|allowed| allowed == c)
        .and_then(|index| u32::try_from(index).ok())
}

/// Computes the GB 32100-2015 check character (the 18th) from the first 17 characters.
pub fn credit_code_check_char(first17: &str) -> Result<char, IdError> {
    let code = first17.trim().to_ascii_uppercase();
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 17 {
        return Err(IdError::WrongLength {
            what: "unified social credit code without its check character",
            id: code,
            expected: 17,
            actual: chars.len(),
        });
    }
    let mut sum = 0;
    for (index, (&c, weight)) in chars.iter().zip(CREDIT_CODE_WEIGHTS).enumerate() {
        let position = index + 1;
        let value = credit_char_value(c).ok_or_else(|| IdError::BadCharacter {
            what: CREDIT_CODE,
            id: code.clone(),
            position,
            found: c,
            allowed: CREDIT_CODE_ALLOWED,
        })?;
        // Positions 3–8 hold the registering authority's GB/T 2260 region code.
        if (3..=8).contains(&position) && !c.is_ascii_digit() {
            return Err(IdError::BadCharacter {
                what: CREDIT_CODE,
                id: code.clone(),
                position,
                found: c,
                allowed: "positions 3–8 must be digits, the registering authority's region code",
            });
        }
        sum += value * weight;
    }
    let check = (31 - sum % 31) % 31;
    Ok(CREDIT_CODE_CHARSET.as_bytes()[check as usize] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes published on the national enterprise credit information system.
    const VALID_CREDIT_CODES: [&str; 3] = [
        "91350100M000100Y43",
        // Huawei Technologies Co., Ltd. (华为技术有限公司)
        "914403001922038216",
        // Shenzhen Tencent Computer Systems Co., Ltd. (深圳市腾讯计算机系统有限公司)
        "91440300708461136T",
    ];

    #[test]
    fn entity_kind_names_round_trip() {
        for kind in EntityKind::ALL {
            assert_eq!(EntityKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn entity_kind_accepts_common_spellings() {
        for spelling in [
            "ZONE",
            "zone",
            "Zone",
            " zone ",
            "ENTITY_KIND_ZONE",
            "entity_kind_zone",
        ] {
            assert_eq!(
                EntityKind::parse(spelling),
                Ok(EntityKind::Zone),
                "{spelling}"
            );
        }
        assert_eq!(
            "enterprise".parse::<EntityKind>(),
            Ok(EntityKind::Enterprise)
        );
        assert_eq!(
            EntityKind::parse("ENTITY_KIND_REGION"),
            Ok(EntityKind::Region)
        );
    }

    #[test]
    fn entity_kind_rejects_unknown_names() {
        for spelling in [
            "",
            "ZONES",
            "park",
            "ENTITY_KIND_",
            "ENTITY_KIND_UNSPECIFIED",
            "KIND_ZONE",
        ] {
            let err = EntityKind::parse(spelling).unwrap_err();
            assert!(matches!(err, IdError::UnknownKind { .. }), "{spelling}");
        }
        assert_eq!(
            EntityKind::parse(" park ").unwrap_err().to_string(),
            "unknown entity kind 'park'; expected REGION, ZONE, ENTERPRISE, CLUSTER or PROJECT"
        );
    }

    #[test]
    fn region_level_parses() {
        for level in RegionLevel::ALL {
            assert_eq!(RegionLevel::parse(level.as_str()), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!(RegionLevel::parse("city"), Ok(RegionLevel::City));
        assert_eq!(
            RegionLevel::parse("REGION_LEVEL_COUNTY"),
            Ok(RegionLevel::County)
        );
        assert_eq!(RegionLevel::parse("省"), Ok(RegionLevel::Province));
        assert_eq!("province".parse::<RegionLevel>(), Ok(RegionLevel::Province));
        assert_eq!(
            RegionLevel::parse("town").unwrap_err().to_string(),
            "unknown region level 'town'; expected PROVINCE, CITY or COUNTY"
        );
        assert!(RegionLevel::parse("").is_err());
    }

    #[test]
    fn accepts_region_codes() {
        for code in [
            "410000", "410300", "410323", "411700", "411725", "210700", "110101", "820000",
        ] {
            assert_eq!(validate_id(EntityKind::Region, code).as_deref(), Ok(code));
        }
        assert_eq!(
            validate_id(EntityKind::Region, " 410300 ").as_deref(),
            Ok("410300")
        );
    }

    #[test]
    fn rejects_bad_region_codes() {
        assert_eq!(
            validate_id(EntityKind::Region, "41030"),
            Err(IdError::WrongLength {
                what: "region code",
                id: "41030".to_owned(),
                expected: 6,
                actual: 5
            })
        );
        assert!(validate_id(EntityKind::Region, "4103000").is_err());
        assert_eq!(
            validate_id(EntityKind::Region, "41O300")
                .unwrap_err()
                .to_string(),
            "region code '41O300' has 'O' at position 3; only digits are allowed (GB/T 2260 codes have six)"
        );
        for code in ["000000", "990000", "100000", "160000", "830000", "001234"] {
            assert!(
                matches!(
                    validate_id(EntityKind::Region, code),
                    Err(IdError::UnknownProvince { .. })
                ),
                "{code}"
            );
        }
        assert!(
            validate_id(EntityKind::Region, "990000")
                .unwrap_err()
                .to_string()
                .starts_with(
                    "region code '990000' starts with 99, which is not a GB/T 2260 province code"
                )
        );
        assert_eq!(
            validate_id(EntityKind::Region, "  "),
            Err(IdError::Empty {
                kind: EntityKind::Region
            })
        );
        assert_eq!(
            validate_id(EntityKind::Region, "").unwrap_err().to_string(),
            "the REGION id is missing"
        );
    }

    #[test]
    fn accepts_free_form_ids() {
        for (kind, id) in [
            (EntityKind::Zone, "411725-CJQ"),
            (EntityKind::Zone, "410300-HTZ"),
            (EntityKind::Zone, "a"),
            (EntityKind::Zone, "Zone_1.v2-b"),
            (EntityKind::Cluster, "410300-equipment"),
            (EntityKind::Cluster, "210700-pv"),
            (EntityKind::Project, "P-2014.001"),
        ] {
            assert_eq!(validate_id(kind, id).as_deref(), Ok(id), "{id}");
        }
        let longest = "x".repeat(64);
        assert_eq!(validate_id(EntityKind::Zone, &longest), Ok(longest));
        assert_eq!(validate_id(EntityKind::Zone, "  z1 ").as_deref(), Ok("z1"));
    }

    #[test]
    fn rejects_bad_free_form_ids() {
        assert_eq!(
            validate_id(EntityKind::Zone, &"x".repeat(65)).unwrap_err(),
            IdError::TooLong {
                kind: EntityKind::Zone,
                id: "x".repeat(65),
                max: 64,
                actual: 65
            }
        );
        assert_eq!(
            validate_id(EntityKind::Zone, "确山CJQ")
                .unwrap_err()
                .to_string(),
            "zone id '确山CJQ' has '确' at position 1; only ASCII letters, digits, '.', '_' and '-' are allowed"
        );
        assert!(matches!(
            validate_id(EntityKind::Cluster, "pv cluster"),
            Err(IdError::BadCharacter {
                position: 3,
                found: ' ',
                ..
            })
        ));
        assert!(validate_id(EntityKind::Project, "p/1").is_err());
        assert!(validate_id(EntityKind::Zone, "").is_err());
    }

    #[test]
    fn computes_check_characters_of_published_codes() {
        for code in VALID_CREDIT_CODES {
            let expected = code.chars().last().unwrap();
            assert_eq!(credit_code_check_char(&code[..17]), Ok(expected), "{code}");
        }
        assert_eq!(credit_code_check_char("91350100m000100y4"), Ok('3'));
    }

    #[test]
    fn check_character_zero_when_sum_is_a_multiple_of_31() {
        // All zeros sum to 0, and 31 − 0 = 31 wraps to the character for 0.
        assert_eq!(credit_code_check_char("00000000000000000"), Ok('0'));
    }

    #[test]
    fn accepts_valid_credit_codes() {
        for code in VALID_CREDIT_CODES {
            assert_eq!(
                validate_id(EntityKind::Enterprise, code).as_deref(),
                Ok(code)
            );
        }
        assert_eq!(
            validate_id(EntityKind::Enterprise, " 91350100m000100y43 ").as_deref(),
            Ok("91350100M000100Y43")
        );
        assert_eq!(
            validate_id(EntityKind::Enterprise, "91440300708461136t").as_deref(),
            Ok("91440300708461136T")
        );
    }

    #[test]
    fn any_single_character_change_fails() {
        for code in VALID_CREDIT_CODES {
            for position in 0..18 {
                for replacement in CREDIT_CODE_CHARSET.chars() {
                    let mut chars: Vec<char> = code.chars().collect();
                    if chars[position] == replacement {
                        continue;
                    }
                    chars[position] = replacement;
                    let changed: String = chars.into_iter().collect();
                    assert!(
                        validate_id(EntityKind::Enterprise, &changed).is_err(),
                        "{changed} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn reports_a_wrong_check_character() {
        assert_eq!(
            validate_id(EntityKind::Enterprise, "91350100M000100Y44"),
            Err(IdError::CheckCharacter {
                id: "91350100M000100Y44".to_owned(),
                expected: '3',
                found: '4'
            })
        );
        assert_eq!(
            validate_id(EntityKind::Enterprise, "91350100M000100Y44")
                .unwrap_err()
                .to_string(),
            "unified social credit code '91350100M000100Y44' fails its check: the check character \
             (position 18) should be '3' but is '4'; some character is mistyped"
        );
    }

    #[test]
    fn reports_the_wrong_length() {
        assert_eq!(
            validate_id(EntityKind::Enterprise, "91350100M000100Y4")
                .unwrap_err()
                .to_string(),
            "'91350100M000100Y4' has 17 characters, but a unified social credit code has exactly 18"
        );
        assert!(validate_id(EntityKind::Enterprise, "91350100M000100Y433").is_err());
        assert!(matches!(
            credit_code_check_char("9135"),
            Err(IdError::WrongLength {
                expected: 17,
                actual: 4,
                ..
            })
        ));
    }

    #[test]
    fn reports_a_forbidden_character_and_its_position() {
        for (code, position, found) in [
            ("91350100I000100Y43", 9, 'I'),
            ("91350100O000100Y43", 9, 'O'),
            ("9135010OM000100Y43", 8, 'O'),
            ("Z1350100M000100Y43", 1, 'Z'),
            ("91350100M000100S43", 16, 'S'),
            ("91350100M000100V43", 16, 'V'),
            ("91350100M000100Y4-", 18, '-'),
            ("91350100M000100Y4I", 18, 'I'),
        ] {
            match validate_id(EntityKind::Enterprise, code) {
                Err(IdError::BadCharacter {
                    position: p,
                    found: f,
                    id,
                    ..
                }) => {
                    assert_eq!((p, f), (position, found), "{code}");
                    assert_eq!(id, code);
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert_eq!(
            validate_id(EntityKind::Enterprise, "91350100I000100Y43")
                .unwrap_err()
                .to_string(),
            "unified social credit code '91350100I000100Y43' has 'I' at position 9; only digits \
             and the letters A–H, J–N, P–R, T, U, W–Y are allowed (never I, O, Z, S or V)"
        );
    }

    #[test]
    fn requires_digits_in_the_region_part() {
        // 'A' is in the charset, so only the region-code rule catches it.
        let err = validate_id(EntityKind::Enterprise, "913A0100M000100Y43").unwrap_err();
        assert!(matches!(
            err,
            IdError::BadCharacter {
                position: 4,
                found: 'A',
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("positions 3–8 must be digits, the registering authority's region code")
        );
    }

    #[test]
    fn zone_kinds_and_project_statuses_read_their_names_only() {
        assert_eq!(
            ZoneKind::parse("high_tech_zone"),
            Ok(ZoneKind::HighTechZone)
        );
        assert_eq!(
            ZoneKind::parse("ZONE_KIND_INDUSTRIAL_PARK"),
            Ok(ZoneKind::IndustrialPark)
        );
        assert_eq!(
            ProjectStatus::parse(" PROJECT_STATUS_UNDER_CONSTRUCTION "),
            Ok(ProjectStatus::UnderConstruction)
        );
        for v in ZoneKind::ALL {
            assert_eq!(ZoneKind::parse(v.as_str()), Ok(*v));
        }
        for v in ProjectStatus::ALL {
            assert_eq!(ProjectStatus::parse(v.as_str()), Ok(*v));
        }
        let e = ZoneKind::parse("UNSPECIFIED").unwrap_err();
        assert!(e.to_string().contains("unknown zone kind"), "{e}");
        assert!(ProjectStatus::parse("DONE").is_err());
    }
}
