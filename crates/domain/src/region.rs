//! The region tree: provinces, cities and counties linked by their parent codes.
//!
//! Every walk up or down the tree goes through [`RegionTree`], which stops at a missing parent
//! and at a cycle (ingestion refuses cycles, but a hand-edited database must not hang a reader).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::entity::RegionLevel;

#[derive(Clone, Debug)]
struct Node {
    level: RegionLevel,
    parent: Option<String>,
}

/// Regions by code with their levels, parents and children.
#[derive(Clone, Debug, Default)]
pub struct RegionTree {
    nodes: HashMap<String, Node>,
    children: HashMap<String, Vec<String>>,
}

/// Why a region does not nest under its parent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NestingError {
    #[error(
        "a {child} cannot be under the {parent} {parent_code}: a region's parent must be of a higher level"
    )]
    LevelNotAbove {
        child: &'static str,
        parent: &'static str,
        parent_code: String,
    },
    #[error(
        "the {child} {code} cannot be under the {parent} {parent_code}: its code must start with {prefix}, the parent's first {digits} digits"
    )]
    CodePrefix {
        child: &'static str,
        code: String,
        parent: &'static str,
        parent_code: String,
        prefix: String,
        digits: usize,
    },
}

/// How many leading code digits a region of `level` shares with every region under it
/// (GB/T 2260: two for a province, four for a city).
fn shared_digits(level: RegionLevel) -> Option<usize> {
    match level {
        RegionLevel::Province => Some(2),
        RegionLevel::City => Some(4),
        RegionLevel::County => None,
    }
}

fn level_name(level: RegionLevel) -> &'static str {
    match level {
        RegionLevel::Province => "province",
        RegionLevel::City => "city",
        RegionLevel::County => "county",
    }
}

/// Whether a region `code` of `level` may stand under `parent_code` of `parent_level`: the
/// parent is of a higher level and, per GB/T 2260, the child's code starts with the parent's
/// shared digits (a county's first four digits are its city's, a city's first two its
/// province's).
pub fn check_nesting(
    code: &str,
    level: RegionLevel,
    parent_code: &str,
    parent_level: RegionLevel,
) -> Result<(), NestingError> {
    if parent_level >= level {
        return Err(NestingError::LevelNotAbove {
            child: level_name(level),
            parent: level_name(parent_level),
            parent_code: parent_code.to_owned(),
        });
    }
    if let Some(digits) = shared_digits(parent_level) {
        let prefix = parent_code.get(..digits).unwrap_or(parent_code);
        if !code.starts_with(prefix) {
            return Err(NestingError::CodePrefix {
                child: level_name(level),
                code: code.to_owned(),
                parent: level_name(parent_level),
                parent_code: parent_code.to_owned(),
                prefix: prefix.to_owned(),
                digits,
            });
        }
    }
    Ok(())
}

impl RegionTree {
    /// The tree of `(code, level, parent_code)` records; a later record of a code replaces an
    /// earlier one.
    pub fn new(
        records: impl IntoIterator<Item = (String, RegionLevel, Option<String>)>,
    ) -> RegionTree {
        let mut tree = RegionTree::default();
        for (code, level, parent) in records {
            tree.nodes.insert(code, Node { level, parent });
        }
        tree.link();
        tree
    }

    /// Adds or replaces regions, as a write of them would leave the tree.
    pub fn upsert(
        &mut self,
        records: impl IntoIterator<Item = (String, RegionLevel, Option<String>)>,
    ) {
        for (code, level, parent) in records {
            self.nodes.insert(code, Node { level, parent });
        }
        self.link();
    }

    fn link(&mut self) {
        self.children.clear();
        for (code, node) in &self.nodes {
            if let Some(parent) = &node.parent {
                self.children
                    .entry(parent.clone())
                    .or_default()
                    .push(code.clone());
            }
        }
        for kids in self.children.values_mut() {
            kids.sort();
        }
    }

    /// Whether the tree holds `code`.
    pub fn has(&self, code: &str) -> bool {
        self.nodes.contains_key(code)
    }

    /// The level of `code`, if the tree holds it.
    pub fn level(&self, code: &str) -> Option<RegionLevel> {
        self.nodes.get(code).map(|n| n.level)
    }

    /// The parent code of `code`, if it has one.
    pub fn parent(&self, code: &str) -> Option<&str> {
        self.nodes.get(code)?.parent.as_deref()
    }

    /// The codes directly under `code`, in code order.
    pub fn children(&self, code: &str) -> &[String] {
        self.children.get(code).map_or(&[], Vec::as_slice)
    }

    /// `code` and the codes above it, nearest first. The walk stops at a parent the tree does
    /// not hold (which is still listed) and before a code it has already listed.
    pub fn ancestors<'a>(&'a self, code: &'a str) -> Vec<&'a str> {
        let mut chain: Vec<&str> = Vec::new();
        // Real chains are a few links: a scan finds a loop; past that a set keeps a deep chain
        // linear (a scan of every link would be quadratic in the depth).
        const SCANNED: usize = 32;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut at = Some(code);
        while let Some(c) = at {
            let looped = if chain.len() < SCANNED {
                chain.contains(&c)
            } else {
                if seen.is_empty() {
                    seen.extend(chain.iter().copied());
                }
                !seen.insert(c)
            };
            if looped {
                break;
            }
            chain.push(c);
            at = self.parent(c);
        }
        chain
    }

    /// The first code the walk up from `code` meets twice, when its parent chain loops.
    pub fn cycle_at<'a>(&'a self, code: &'a str) -> Option<&'a str> {
        let mut seen = HashSet::new();
        let mut at = Some(code);
        while let Some(c) = at {
            if !seen.insert(c) {
                return Some(c);
            }
            at = self.parent(c);
        }
        None
    }

    /// `root` and every code under it (`root` alone when the tree does not hold it).
    pub fn subtree(&self, root: &str) -> BTreeSet<String> {
        let mut subtree = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(code) = stack.pop() {
            if subtree.insert(code.to_owned()) {
                stack.extend(self.children(code).iter().map(String::as_str));
            }
        }
        subtree
    }

    /// Whether `code` is `ancestor` or lies under it.
    pub fn contains(&self, ancestor: &str, code: &str) -> bool {
        self.ancestors(code).contains(&ancestor)
    }

    /// The city `code` belongs to: itself when it is a city, else its nearest city ancestor.
    pub fn city_of<'a>(&'a self, code: &'a str) -> Option<&'a str> {
        self.ancestors(code)
            .into_iter()
            .find(|c| self.level(c) == Some(RegionLevel::City))
    }

    /// Whether `code` nests under its parent (see [`check_nesting`]); a region without a parent,
    /// or whose parent the tree does not hold, nests.
    pub fn check_parent(&self, code: &str) -> Result<(), NestingError> {
        let (Some(level), Some(parent)) = (self.level(code), self.parent(code)) else {
            return Ok(());
        };
        match self.level(parent) {
            Some(parent_level) => check_nesting(code, level, parent, parent_level),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegionLevel::{City, County, Province};

    fn tree(records: &[(&str, RegionLevel, Option<&str>)]) -> RegionTree {
        RegionTree::new(
            records
                .iter()
                .map(|(c, l, p)| (c.to_string(), *l, p.map(str::to_string))),
        )
    }

    fn henan() -> RegionTree {
        tree(&[
            ("410000", Province, None),
            ("410300", City, Some("410000")),
            ("410323", County, Some("410300")),
            ("410381", County, Some("410300")),
            ("411700", City, Some("410000")),
            ("411721", County, Some("411700")),
        ])
    }

    #[test]
    fn walks_up_and_down() {
        let t = henan();
        assert_eq!(t.ancestors("410323"), ["410323", "410300", "410000"]);
        assert_eq!(t.ancestors("410000"), ["410000"]);
        assert_eq!(
            t.subtree("410300").into_iter().collect::<Vec<_>>(),
            ["410300", "410323", "410381"]
        );
        assert_eq!(t.subtree("410000").len(), 6);
        assert_eq!(t.children("410300"), ["410323", "410381"]);
        assert!(t.contains("410000", "411721"));
        assert!(t.contains("410323", "410323"));
        assert!(!t.contains("410300", "411721"));
        assert_eq!(t.city_of("410323"), Some("410300"));
        assert_eq!(t.city_of("410300"), Some("410300"));
        assert_eq!(t.city_of("410000"), None);
        assert_eq!(t.cycle_at("410323"), None);
    }

    #[test]
    fn a_missing_parent_ends_the_walk() {
        let t = tree(&[("410323", County, Some("410300"))]);
        assert_eq!(t.ancestors("410323"), ["410323", "410300"]);
        assert_eq!(t.city_of("410323"), None);
        assert!(t.check_parent("410323").is_ok());
        assert_eq!(
            t.subtree("999999").into_iter().collect::<Vec<_>>(),
            ["999999"]
        );
        assert!(t.ancestors("999999") == ["999999"]);
    }

    #[test]
    fn cycles_end_every_walk() {
        let t = tree(&[
            ("410000", Province, Some("410323")),
            ("410300", City, Some("410000")),
            ("410323", County, Some("410300")),
            ("410381", County, Some("410381")),
        ]);
        assert_eq!(t.ancestors("410323"), ["410323", "410300", "410000"]);
        assert_eq!(t.cycle_at("410300"), Some("410300"));
        assert_eq!(t.cycle_at("410381"), Some("410381"));
        assert_eq!(t.subtree("410000").len(), 3);
        assert_eq!(t.ancestors("410381"), ["410381"]);
        assert_eq!(t.city_of("410000"), Some("410300"));
        assert!(t.contains("410000", "410300"));
    }

    #[test]
    fn deep_trees_are_walked_without_recursion() {
        let depth = 100_000;
        let t = RegionTree::new((0..depth).map(|i| {
            let parent = (i > 0).then(|| format!("{:06}", i - 1));
            (format!("{i:06}"), County, parent)
        }));
        assert_eq!(t.ancestors(&format!("{:06}", depth - 1)).len(), depth);
        assert_eq!(t.subtree("000000").len(), depth);
        assert!(t.contains("000000", &format!("{:06}", depth - 1)));
        // A loop longer than the scanned prefix still ends the walk, once round.
        let ring = 100;
        let t = RegionTree::new((0..ring).map(|i| {
            let parent = format!("{:06}", (i + 1) % ring);
            (format!("{i:06}"), County, Some(parent))
        }));
        assert_eq!(t.ancestors("000007").len(), ring);
        assert_eq!(t.cycle_at("000007"), Some("000007"));
    }

    #[test]
    fn upsert_relinks_children() {
        let mut t = henan();
        t.upsert([("410323".to_string(), County, Some("411700".to_string()))]);
        assert_eq!(t.children("410300"), ["410381"]);
        assert_eq!(t.children("411700"), ["410323", "411721"]);
        assert!(matches!(
            t.check_parent("410323"),
            Err(NestingError::CodePrefix { digits: 4, .. })
        ));
    }

    #[test]
    fn levels_must_nest() {
        assert!(check_nesting("410300", City, "410000", Province).is_ok());
        assert!(check_nesting("410323", County, "410300", City).is_ok());
        // Counties of a municipality's districts may sit right under the province.
        assert!(check_nesting("110101", County, "110000", Province).is_ok());
        for (child, parent) in [
            (Province, City),
            (Province, Province),
            (City, County),
            (City, City),
            (County, County),
        ] {
            assert!(
                matches!(
                    check_nesting("410323", child, "410300", parent),
                    Err(NestingError::LevelNotAbove { .. })
                ),
                "{child:?} under {parent:?}"
            );
        }
        let e = check_nesting("410323", County, "411700", City).unwrap_err();
        assert!(e.to_string().contains("start with 4117"), "{e}");
        let e = check_nesting("420100", City, "410000", Province).unwrap_err();
        assert!(e.to_string().contains("start with 41"), "{e}");
    }
}
