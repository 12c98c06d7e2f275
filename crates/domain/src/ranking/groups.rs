//! Group keys per entity (`region:410300`, `tag:四支撑`), interned: each distinct key is stored
//! once and an entity's keys are a run of small integer ids, so a national cohort of 500,000
//! entities holds a few hundred strings instead of millions.

use std::collections::HashMap;

/// The group keys of each entity, in the order they were given, without repeats.
///
/// Compressed rows: entity `e` has the ids `ids[start[e]..start[e + 1]]`, each an index into
/// `names`.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// `start[e]` is where entity `e`'s ids begin; one more entry than entities (when any).
    start: Vec<u32>,
    ids: Vec<u32>,
}

impl PartialEq for Groups {
    fn eq(&self, other: &Self) -> bool {
        // `index` is derived from `names`.
        self.names == other.names && self.start == other.start && self.ids == other.ids
    }
}

impl Groups {
    /// No entities.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups from each entity's keys.
    pub fn from_keys<I, K, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut groups = Self::new();
        for entity in keys {
            groups.push(entity);
        }
        groups
    }

    /// Appends the next entity with its keys; a key repeated for one entity counts once.
    pub fn push<K, S>(&mut self, keys: K)
    where
        K: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if self.start.is_empty() {
            self.start.push(0);
        }
        let from = *self.start.last().unwrap_or(&0) as usize;
        for key in keys {
            let key = key.as_ref();
            let id = match self.index.get(key) {
                Some(&id) => id,
                None => {
                    let id = self.names.len() as u32;
                    self.names.push(key.to_owned());
                    self.index.insert(key.to_owned(), id);
                    id
                }
            };
            if !self.ids[from..].contains(&id) {
                self.ids.push(id);
            }
        }
        self.start.push(self.ids.len() as u32);
    }

    /// The number of entities.
    pub fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Whether no entity was pushed (a run without groups).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of distinct keys.
    pub fn key_count(&self) -> usize {
        self.names.len()
    }

    /// The text of key `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Where entity `e`'s ids lie in [`Groups::all_ids`].
    pub fn span(&self, e: usize) -> std::ops::Range<usize> {
        self.start[e] as usize..self.start[e + 1] as usize
    }

    /// Every entity's ids, one run after the other.
    pub fn all_ids(&self) -> &[u32] {
        &self.ids
    }

    /// Entity `e`'s key ids.
    pub fn ids_of(&self, e: usize) -> &[u32] {
        &self.ids[self.span(e)]
    }

    /// Entity `e`'s keys.
    pub fn keys_of(&self, e: usize) -> impl Iterator<Item = &str> + '_ {
        self.ids_of(e).iter().map(|&id| self.name(id))
    }

    /// The first `n` entities' groups.
    pub fn prefix(&self, n: usize) -> Self {
        Self::from_keys((0..n.min(self.len())).map(|e| self.keys_of(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_interned_in_order_without_repeats() {
        let groups = Groups::from_keys([
            vec!["region:41", "tag:a"],
            vec![],
            vec!["tag:a", "tag:a", "region:41"],
        ]);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups.key_count(), 2);
        assert_eq!(
            groups.keys_of(0).collect::<Vec<_>>(),
            ["region:41", "tag:a"]
        );
        assert_eq!(groups.keys_of(1).count(), 0);
        assert_eq!(
            groups.keys_of(2).collect::<Vec<_>>(),
            ["tag:a", "region:41"]
        );
        assert_eq!(groups.ids_of(2), [1, 0]);
        assert!(Groups::new().is_empty());
        assert_eq!(
            groups.prefix(1),
            Groups::from_keys([["region:41", "tag:a"]])
        );
    }
}
