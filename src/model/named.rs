//! `Named<V>`: a name → value map of a step (`outputs`, `env`, `with`) that costs one
//! pointer when it is empty, as it is in most steps: a 100,000-step runbook holds every
//! step at once.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{Passed, Spanned};

/// Reads as an `IndexMap` (empty when nothing was given); writing creates the map.
#[derive(Clone)]
pub struct Named<V>(Option<Box<IndexMap<String, V>>>);

impl<V> Default for Named<V> {
    fn default() -> Self {
        Self(None)
    }
}

/// The empty map a `Named<V>` without entries reads as.
pub trait NoEntries: Sized + 'static {
    fn none() -> &'static IndexMap<String, Self>;
}

impl NoEntries for Spanned<String> {
    fn none() -> &'static IndexMap<String, Self> {
        static NONE: OnceLock<IndexMap<String, Spanned<String>>> = OnceLock::new();
        NONE.get_or_init(IndexMap::new)
    }
}

impl NoEntries for Spanned<Passed> {
    fn none() -> &'static IndexMap<String, Self> {
        static NONE: OnceLock<IndexMap<String, Spanned<Passed>>> = OnceLock::new();
        NONE.get_or_init(IndexMap::new)
    }
}

impl<V: NoEntries> Deref for Named<V> {
    type Target = IndexMap<String, V>;

    fn deref(&self) -> &Self::Target {
        match &self.0 {
            Some(map) => map,
            None => V::none(),
        }
    }
}

impl<V: NoEntries> DerefMut for Named<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<V> From<IndexMap<String, V>> for Named<V> {
    fn from(map: IndexMap<String, V>) -> Self {
        Self((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl<'a, V: NoEntries> IntoIterator for &'a Named<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = indexmap::map::Iter<'a, String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V: NoEntries + PartialEq> PartialEq for Named<V> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<V: NoEntries + std::fmt::Debug> std::fmt::Debug for Named<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<V: JsonSchema> JsonSchema for Named<V> {
    fn inline_schema() -> bool {
        IndexMap::<String, V>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        IndexMap::<String, V>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        IndexMap::<String, V>::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        IndexMap::<String, V>::json_schema(generator)
    }
}
