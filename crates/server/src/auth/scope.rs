//! Region scopes: a submitter writes only entities inside its `zonerank_regions` subtrees (a
//! token for 410300 writes Luoyang's zones and its counties', never Zhengzhou's). Every
//! ingestion write resolves its rows' regions here; one row outside refuses the whole request,
//! before anything is looked up for existence, so a refusal says nothing of what exists
//! outside the scope.

use std::collections::HashMap;

use zonerank_domain::{entity::EntityKind, region::RegionTree};
use zonerank_storage::{RegionRecord, StorageError, Store, Writes};

use super::{Principal, Role};
use crate::error::ServiceError;

/// Who is calling, put in every request's extensions by the guard (anonymous with auth off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The verified token's principal; None when the server runs without auth.
    pub principal: Option<Principal>,
}

impl Caller {
    /// The caller of `request` (anonymous when nothing put one there).
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_default()
    }

    /// The principal's `sub`, or `anonymous` with auth off.
    pub fn name(&self) -> &str {
        self.principal
            .as_ref()
            .map_or("anonymous", |p| p.subject.as_str())
    }

    /// The regions whose subtrees bound this caller's writes; None when unbounded (auth off,
    /// or an admin).
    fn region_roots(&self) -> Option<&[String]> {
        let principal = self.principal.as_ref()?;
        if principal.roles.contains(&Role::Admin) {
            return None;
        }
        Some(&principal.regions)
    }
}

/// Where the regions of a write's rows are read: the store, or the write's own transaction.
pub trait RegionLookup {
    /// Every region.
    fn all_regions(&self) -> impl Future<Output = Result<Vec<RegionRecord>, StorageError>> + Send;
    /// The region of each of `ids` that exists (entities of `kind`).
    fn regions_of(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, String>, StorageError>> + Send;
}

impl RegionLookup for Store {
    async fn all_regions(&self) -> Result<Vec<RegionRecord>, StorageError> {
        self.regions().await
    }
    async fn regions_of(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StorageError> {
        self.entity_regions(kind, ids).await
    }
}

impl RegionLookup for Writes {
    async fn all_regions(&self) -> Result<Vec<RegionRecord>, StorageError> {
        self.regions().await
    }
    async fn regions_of(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StorageError> {
        self.entity_regions(kind, ids).await
    }
}

/// A row of a write naming an entity: its field path, kind and (normalized) id.
pub type EntityRow = (String, EntityKind, String);

/// What a caller may write, for the rows of one request.
pub struct Scope {
    /// None: everything.
    bound: Option<Bound>,
}

struct Bound {
    principal: String,
    roots: Vec<String>,
    tree: RegionTree,
}

impl Scope {
    /// The scope of `caller`, reading the region tree through `lookup` only when it is bounded.
    pub async fn of(caller: &Caller, lookup: &impl RegionLookup) -> Result<Scope, ServiceError> {
        let Some(roots) = caller.region_roots() else {
            return Ok(Scope { bound: None });
        };
        let tree = RegionTree::new(
            lookup
                .all_regions()
                .await?
                .into_iter()
                .map(|r| (r.code, r.level, r.parent_code)),
        );
        Ok(Scope {
            bound: Some(Bound {
                principal: caller.name().to_string(),
                roots: roots.to_vec(),
                tree,
            }),
        })
    }

    fn allows(bound: &Bound, region: &str) -> bool {
        bound
            .roots
            .iter()
            .any(|root| bound.tree.has(root) && bound.tree.contains(root, region))
    }

    fn refuse(bound: &Bound, field: &str, region: Option<&str>, what: String) -> ServiceError {
        let mut metadata = vec![
            ("principal".to_string(), bound.principal.clone()),
            ("field".to_string(), field.to_string()),
        ];
        if let Some(region) = region {
            metadata.push(("region".to_string(), region.to_string()));
        }
        ServiceError::PermissionDenied {
            reason: "REGION_OUT_OF_SCOPE".into(),
            message: format!(
                "{} may not write {field}: {what} is outside its regions ({}); nothing written",
                bound.principal,
                bound.roots.join(", ")
            ),
            metadata,
        }
    }

    /// Refuses the request when a region the caller named (`zones[3].region_code`) lies outside
    /// the scope. Empty codes are left to the request's own checks.
    pub fn regions<'a>(
        &self,
        rows: impl IntoIterator<Item = (String, &'a str)>,
    ) -> Result<(), ServiceError> {
        let Some(bound) = &self.bound else {
            return Ok(());
        };
        for (field, region) in rows {
            if !region.is_empty() && !Scope::allows(bound, region) {
                return Err(Scope::refuse(
                    bound,
                    &field,
                    Some(region),
                    format!("region {region}"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses the request when an entity it names lies outside the scope. With `must_exist`,
    /// an entity that does not exist is refused too (its region cannot be shown to be inside),
    /// so the answer is the same whether it exists elsewhere or not at all; without, an
    /// entity the request creates passes (its region is checked by [`Scope::regions`]).
    pub async fn entities(
        &self,
        lookup: &impl RegionLookup,
        rows: &[EntityRow],
        must_exist: bool,
    ) -> Result<(), ServiceError> {
        let Some(bound) = &self.bound else {
            return Ok(());
        };
        let mut ids: HashMap<EntityKind, Vec<String>> = HashMap::new();
        for (_, kind, id) in rows.iter().filter(|(_, _, id)| !id.is_empty()) {
            ids.entry(*kind).or_default().push(id.clone());
        }
        let mut regions: HashMap<EntityKind, HashMap<String, String>> = HashMap::new();
        for (kind, mut of_kind) in ids {
            of_kind.sort();
            of_kind.dedup();
            regions.insert(kind, lookup.regions_of(kind, &of_kind).await?);
        }
        for (field, kind, id) in rows.iter().filter(|(_, _, id)| !id.is_empty()) {
            let inside = match regions.get(kind).and_then(|r| r.get(id)) {
                Some(region) => Scope::allows(bound, region),
                None => !must_exist,
            };
            if !inside {
                // The entity's region is not named: it would tell where an entity lies that
                // the caller may not see.
                let what = format!("{} {id}", kind.as_str().to_lowercase());
                return Err(Scope::refuse(bound, field, None, what));
            }
        }
        Ok(())
    }

    /// Refuses an enterprise the caller places in no zone: without one, its region is none of
    /// the caller's.
    pub fn zoned(&self, field: String, zone: Option<&str>) -> Result<(), ServiceError> {
        match (&self.bound, zone) {
            (Some(bound), None) => Err(Scope::refuse(
                bound,
                &field,
                None,
                "an enterprise without a zone".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use zonerank_domain::entity::RegionLevel;

    use super::*;

    fn henan() -> RegionTree {
        RegionTree::new([
            ("410000".to_string(), RegionLevel::Province, None),
            (
                "410100".to_string(),
                RegionLevel::City,
                Some("410000".to_string()),
            ),
            (
                "410300".to_string(),
                RegionLevel::City,
                Some("410000".to_string()),
            ),
            (
                "410323".to_string(),
                RegionLevel::County,
                Some("410300".to_string()),
            ),
        ])
    }

    fn luoyang() -> Scope {
        Scope {
            bound: Some(Bound {
                principal: "luoyang-stats".into(),
                roots: vec!["410300".into()],
                tree: henan(),
            }),
        }
    }

    #[test]
    fn a_city_scope_holds_the_city_and_its_counties_and_nothing_else() {
        let scope = luoyang();
        assert!(
            scope
                .regions([("zones[0].region_code".into(), "410300")])
                .is_ok()
        );
        assert!(
            scope
                .regions([("zones[0].region_code".into(), "410323")])
                .is_ok()
        );
        let refused = scope
            .regions([
                ("zones[0].region_code".into(), "410323"),
                ("zones[1].region_code".into(), "410100"),
            ])
            .unwrap_err();
        let ServiceError::PermissionDenied { metadata, .. } = refused else {
            panic!("not a permission refusal");
        };
        assert!(metadata.contains(&("field".into(), "zones[1].region_code".into())));
        assert!(metadata.contains(&("region".into(), "410100".into())));
        assert!(metadata.contains(&("principal".into(), "luoyang-stats".into())));
        // The province above the city, and a code the tree does not hold, are outside.
        assert!(scope.regions([("r".into(), "410000")]).is_err());
        assert!(scope.regions([("r".into(), "419999")]).is_err());
    }

    #[test]
    fn admins_and_open_servers_are_unbounded() {
        let admin = Caller {
            principal: Some(Principal {
                subject: "root".into(),
                roles: vec![Role::Admin],
                regions: vec![],
            }),
        };
        assert!(admin.region_roots().is_none());
        assert!(Caller::default().region_roots().is_none());
        assert_eq!(Caller::default().name(), "anonymous");
        let submitter = Caller {
            principal: Some(Principal {
                subject: "s".into(),
                roles: vec![Role::Submitter],
                regions: vec!["410300".into()],
            }),
        };
        assert_eq!(submitter.region_roots(), Some(&["410300".to_string()][..]));
    }
}
