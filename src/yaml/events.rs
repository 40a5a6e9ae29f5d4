//! Builds the spanned tree straight from the parser's events, in one pass and without
//! recursion: each event is charged to the [`Budget`], anchored nodes are recorded so that
//! their aliases replay them (bounded), keys are checked for duplicates as they arrive and
//! `<<` merge keys are expanded when their mapping ends.
//!
//! A node replayed through an alias is placed at the alias, where the author referred to it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::rc::Rc;

use granit_parser::{ErrorKind, Event, Parser, ScalarStyle, ScanError, StrInput};

use super::budget::{Breach, Budget, MAX_EXPANSIONS_PER_ANCHOR, MAX_REPLAYED_EVENTS};
use super::error::{YamlError, YamlErrorKind};
use super::scalar::{self, Tag, TagKind};
use super::{Key, Node, Span, Value};

/// Parses one YAML document into a spanned tree under the resource budget.
pub fn parse(source: &str) -> Result<Node, YamlError> {
    Builder::new(source, &[], None).run()
}

/// Receives each item of a streamed list: the list's key, the item's index and the item.
pub(crate) type Sink<'s> = &'s mut dyn FnMut(&'static str, usize, Node);

/// [`parse`], but each item of a list under one of the top-level keys `lists` goes to `sink`
/// as soon as it is complete, and is left out of the tree (the list stays, empty): a large
/// file's steps need not all be held as a tree at once.
pub fn parse_streaming(
    source: &str,
    lists: &[&'static str],
    sink: Sink<'_>,
) -> Result<Node, YamlError> {
    Builder::new(source, lists, Some(sink)).run()
}

/// A node event as the builder sees it, live from the parser or replayed from an anchor.
#[derive(Clone)]
enum Ev<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<Box<Tag>>,
    },
    Start {
        map: bool,
        tag: Option<Box<Tag>>,
    },
    End {
        map: bool,
    },
}

impl Ev<'_> {
    /// The bytes a recorded copy owns, as the budget counts them.
    fn owned_bytes(&self) -> usize {
        let tag = |tag: &Option<Box<Tag>>| tag.as_ref().map_or(0, |t| t.text.len());
        match self {
            Ev::Scalar { value, tag: t, .. } => {
                let owned = match value {
                    Cow::Borrowed(_) => 0,
                    Cow::Owned(value) => value.len(),
                };
                owned.saturating_add(tag(t))
            }
            Ev::Start { tag: t, .. } => tag(t),
            Ev::End { .. } => 0,
        }
    }
}

/// An event kept for an anchor, with the span it was written at.
#[derive(Clone)]
struct Rec<'a> {
    ev: Ev<'a>,
    span: Span,
}

/// An anchored collection being recorded until it ends.
struct Recording<'a> {
    anchor: usize,
    depth: usize,
    events: Vec<Rec<'a>>,
}

/// What tells two keys of a mapping apart: their text and type, or their integer value
/// (`1` and `0x1` are the same key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Fingerprint<'a> {
    Int { negative: bool, magnitude: u128 },
    Text { tag: KeyTag, text: Cow<'a, str> },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyTag {
    Kind(TagKind),
    Custom(Box<str>),
}

fn fingerprint<'a>(value: &Cow<'a, str>, tag: Option<&Tag>, style: ScalarStyle) -> Fingerprint<'a> {
    let kind = scalar::kind_of_opt(tag);
    // A plain key starting with a letter (most keys) is no integer: no number starts so.
    let word = kind == TagKind::None
        && value
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic);
    if kind == TagKind::Int || (kind == TagKind::None && style == ScalarStyle::Plain && !word) {
        let t = value.trim_matches([' ', '\t', '\r', '\n']);
        let int = if t.starts_with('-') {
            scalar::signed(t).map(|v| (v < 0, v.unsigned_abs()))
        } else {
            scalar::unsigned(t).map(|v| (false, v))
        };
        if let Some((negative, magnitude)) = int {
            return Fingerprint::Int {
                negative,
                magnitude,
            };
        }
    }
    let kind = if kind == TagKind::None && scalar::is_null(kind, value, style) {
        TagKind::Null
    } else {
        kind
    };
    let tag = match (kind, tag) {
        (TagKind::Other, Some(tag)) => KeyTag::Custom(tag.text.clone()),
        (TagKind::None | TagKind::NonSpecific, _) => KeyTag::Kind(TagKind::String),
        (kind, _) if kind.can_be_string() => KeyTag::Kind(TagKind::String),
        (kind, _) => KeyTag::Kind(kind),
    };
    Fingerprint::Text {
        tag,
        text: value.clone(),
    }
}

/// Mappings up to this size find duplicate keys by comparing with each; larger ones hash.
const LINEAR_KEYS: usize = 16;

/// The keys a mapping holds so far.
#[derive(Default)]
struct Keys<'a> {
    list: Vec<Fingerprint<'a>>,
    index: Option<HashSet<Fingerprint<'a>>>,
}

impl<'a> Keys<'a> {
    fn contains(&self, key: &Fingerprint<'a>) -> bool {
        match &self.index {
            Some(index) => index.contains(key),
            None => self.list.contains(key),
        }
    }

    fn insert(&mut self, key: Fingerprint<'a>) {
        if let Some(index) = &mut self.index {
            index.insert(key.clone());
        } else if self.list.len() == LINEAR_KEYS {
            let mut index: HashSet<_> = self.list.iter().cloned().collect();
            index.insert(key.clone());
            self.index = Some(index);
        }
        self.list.push(key);
    }
}

/// An entry a `<<` brings into a mapping, unless the mapping has the key already. Its
/// problem, if any, counts only if it is brought in.
struct Merged<'a> {
    key: Key,
    value: Node,
    fingerprint: Fingerprint<'a>,
    error: Option<YamlError>,
}

/// What the next node of a mapping is.
enum Slot<'a> {
    Key,
    Value(Key, Fingerprint<'a>, Option<YamlError>),
    MergeValue,
}

struct MapFrame<'a> {
    entries: Vec<(Key, Node)>,
    keys: Keys<'a>,
    slot: Slot<'a>,
    merges: Vec<Merged<'a>>,
    /// Problems of entries kept for later: inside a `<<` value, an entry's problem counts
    /// only if the entry is merged.
    errors: Vec<(usize, YamlError)>,
}

// Collections being built live only on the stack of open ones (48 deep at most): their
// size costs nothing, a box per mapping would.
#[allow(clippy::large_enum_variant)]
enum Collection<'a> {
    Seq(Vec<Node>),
    Map(MapFrame<'a>),
    /// The list of mappings under a `<<`: their entries, in order.
    MergeList(Vec<Merged<'a>>),
}

/// A collection being built: its contents, where it stands and where it was written.
struct Frame<'a> {
    collection: Collection<'a>,
    span: Span,
    defined: Span,
    /// Inside the value of a `<<`: problems of scalars wait until the entry is merged.
    in_merge: bool,
    /// The first such problem of a list.
    deferred: Option<YamlError>,
    /// Part of a key: a list or mapping used as a key is refused once the whole key is read,
    /// with the first problem found inside it.
    in_key: bool,
    /// A streamed list: its key, and how many items went to the sink.
    streamed: Option<(&'static str, usize)>,
}

impl Frame<'_> {
    /// Whether a node completed now goes under a `<<`, directly or deeper.
    fn merging(&self) -> bool {
        self.in_merge
            || matches!(
                self.collection,
                Collection::MergeList(_)
                    | Collection::Map(MapFrame {
                        slot: Slot::MergeValue,
                        ..
                    })
            )
    }
}

/// A finished node on its way to its parent.
struct Done<'a> {
    node: Node,
    /// Where it was written (differs from `node.span` when it came through an alias).
    defined: Span,
    /// A mapping's keys, in the order of its entries, for merging it into another.
    keys: Option<Vec<Fingerprint<'a>>>,
    /// The entries of a list under `<<`.
    merged: Option<Vec<Merged<'a>>>,
    /// Problems kept for later (inside a `<<` value), by entry for a mapping.
    errors: Vec<(usize, YamlError)>,
}

impl Done<'_> {
    fn leaf(node: Node, defined: Span) -> Self {
        Self {
            node,
            defined,
            keys: None,
            merged: None,
            errors: Vec::new(),
        }
    }
}

struct Builder<'a, 's> {
    source: &'a str,
    /// The top-level keys whose lists are streamed, and where their items go.
    lists: &'s [&'static str],
    sink: Option<Sink<'s>>,
    parser: Parser<'a, StrInput<'a>>,
    budget: Budget,
    anchors: Vec<Option<Rc<[Rec<'a>]>>>,
    recordings: Vec<Recording<'a>>,
    /// Key lists of finished mappings, emptied, for the next mappings to start with: most
    /// mappings are small and many, and their keys are not needed once they end.
    spare_keys: Vec<Vec<Fingerprint<'a>>>,
    expansions: Vec<usize>,
    replayed: usize,
    stack: Vec<Frame<'a>>,
    /// The first problem inside a key being read (see [`Frame::in_key`]).
    key_error: Option<YamlError>,
    root: Option<Node>,
    last: Span,
}

fn span_of(span: &granit_parser::Span) -> Span {
    match span.byte_range() {
        Some(range) => Span::new(range.start, range.end.saturating_sub(range.start)),
        None => Span::default(),
    }
}

impl<'a, 's> Builder<'a, 's> {
    fn new(source: &'a str, lists: &'s [&'static str], sink: Option<Sink<'s>>) -> Self {
        Self {
            source,
            lists,
            sink,
            parser: Parser::new_from_str(source),
            budget: Budget::default(),
            anchors: Vec::new(),
            recordings: Vec::new(),
            spare_keys: Vec::new(),
            expansions: Vec::new(),
            replayed: 0,
            stack: Vec::new(),
            key_error: None,
            root: None,
            last: Span::default(),
        }
    }

    fn breach(breach: Breach, span: Span) -> YamlError {
        YamlError::new(YamlErrorKind::Budget(breach), span)
    }

    fn run(mut self) -> Result<Node, YamlError> {
        while let Some(next) = self.parser.next() {
            let (event, span) = next.map_err(|err| self.scan_error(&err))?;
            let span = span_of(&span);
            self.last = span;
            self.event(event, span)?;
        }
        self.budget
            .finish()
            .map_err(|breach| Self::breach(breach, self.last))?;
        // A stream without a document (empty, or only comments) is one null.
        Ok(self.root.unwrap_or(Node {
            value: Value::Null,
            span: self.last,
        }))
    }

    fn event(&mut self, event: Event<'a>, span: Span) -> Result<(), YamlError> {
        let charged = |result: Result<(), Breach>| result.map_err(|b| Self::breach(b, span));
        let start = |map: bool, tag: Option<Cow<'a, granit_parser::Tag>>| {
            let original = tag.as_ref().map(|t| t.original());
            let ev = Ev::Start {
                map,
                tag: tag.map(|t| Box::new(Tag::from_parser(&t))),
            };
            (ev, original)
        };
        let mut started = None;
        let (ev, anchor) = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {
                return charged(self.budget.marker());
            }
            Event::DocumentStart(..) => return charged(self.budget.document_start()),
            Event::Alias(anchor) => return self.alias(anchor, span),
            Event::Scalar(value, style, anchor, tag) => {
                let original = tag.as_ref().map(|t| t.original());
                let tag = tag.map(|t| Box::new(Tag::from_parser(&t)));
                let merge_key = value == "<<"
                    && tag
                        .as_ref()
                        .map_or(style == ScalarStyle::Plain, |t| t.kind == TagKind::Merge);
                let tag_len = tag.as_ref().map_or(0, |t| t.budget_len);
                charged(self.budget.scalar(value.len(), tag_len, anchor, merge_key))?;
                check_tag(tag.as_deref(), original, Shape::Scalar, span)?;
                (Ev::Scalar { value, style, tag }, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                let (ev, original) = start(false, tag);
                started = original;
                (ev, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                let (ev, original) = start(true, tag);
                started = original;
                (ev, anchor)
            }
            Event::SequenceEnd => (Ev::End { map: false }, 0),
            Event::MappingEnd => (Ev::End { map: true }, 0),
            _ => return Ok(()),
        };
        match &ev {
            Ev::Start { map, tag } => {
                let tag_len = tag.as_ref().map_or(0, |t| t.budget_len);
                charged(self.budget.start(*map, tag_len, anchor))?;
                let shape = if *map { Shape::Map } else { Shape::Seq };
                check_tag(tag.as_deref(), started, shape, span)?;
                for recording in &mut self.recordings {
                    recording.depth += 1;
                }
                if anchor != 0 {
                    self.charge_recorded(&ev, span)?;
                    self.recordings.push(Recording {
                        anchor,
                        depth: 1,
                        events: vec![Rec {
                            ev: ev.clone(),
                            span,
                        }],
                    });
                    let last = self.recordings.len() - 1;
                    self.record(&ev, span, Some(last))?;
                } else {
                    self.record(&ev, span, None)?;
                }
            }
            Ev::End { map } => {
                charged(self.budget.end(*map))?;
                self.record(&ev, span, None)?;
                for recording in &mut self.recordings {
                    recording.depth -= 1;
                }
                while self.recordings.last().is_some_and(|r| r.depth == 0) {
                    if let Some(done) = self.recordings.pop() {
                        self.keep(done.anchor, Rc::from(done.events));
                    }
                }
            }
            Ev::Scalar { .. } => {
                self.record(&ev, span, None)?;
                if anchor != 0 {
                    self.charge_recorded(&ev, span)?;
                    self.keep(
                        anchor,
                        Rc::from(vec![Rec {
                            ev: ev.clone(),
                            span,
                        }]),
                    );
                }
            }
        }
        self.node_event(ev, span, span)
    }

    fn keep(&mut self, anchor: usize, events: Rc<[Rec<'a>]>) {
        if anchor >= self.anchors.len() {
            self.anchors.resize(anchor + 8, None);
        }
        self.anchors[anchor] = Some(events);
    }

    fn charge_recorded(&mut self, ev: &Ev<'a>, span: Span) -> Result<(), YamlError> {
        self.budget
            .recorded(ev.owned_bytes())
            .map_err(|b| Self::breach(b, span))
    }

    /// Copies `ev` into every anchored collection being recorded, but the one at `except`.
    fn record(&mut self, ev: &Ev<'a>, span: Span, except: Option<usize>) -> Result<(), YamlError> {
        for i in 0..self.recordings.len() {
            if Some(i) == except {
                continue;
            }
            self.charge_recorded(ev, span)?;
            self.recordings[i].events.push(Rec {
                ev: ev.clone(),
                span,
            });
        }
        Ok(())
    }

    /// An alias: its anchor's events again, each placed at the alias.
    fn alias(&mut self, anchor: usize, at: Span) -> Result<(), YamlError> {
        self.budget.alias().map_err(|b| Self::breach(b, at))?;
        if anchor >= self.expansions.len() {
            self.expansions.resize(anchor + 1, 0);
        }
        self.expansions[anchor] = self.expansions[anchor].saturating_add(1);
        let count = self.expansions[anchor];
        if count > MAX_EXPANSIONS_PER_ANCHOR {
            return Err(YamlError::new(
                YamlErrorKind::AliasExpansions {
                    anchor,
                    count,
                    max: MAX_EXPANSIONS_PER_ANCHOR,
                },
                at,
            ));
        }
        if self.recordings.iter().any(|r| r.anchor == anchor) {
            return Err(YamlError::new(YamlErrorKind::RecursiveAlias, at));
        }
        let Some(events) = self.anchors.get(anchor).cloned().flatten() else {
            return Err(YamlError::new(YamlErrorKind::UnknownAnchor, at));
        };
        for rec in events.iter() {
            self.replayed = self.replayed.saturating_add(1);
            if self.replayed > MAX_REPLAYED_EVENTS {
                return Err(YamlError::new(
                    YamlErrorKind::AliasReplay {
                        total: self.replayed,
                        max: MAX_REPLAYED_EVENTS,
                    },
                    at,
                ));
            }
            let charged = match &rec.ev {
                Ev::Scalar { value, style, tag } => {
                    let merge = tag.as_ref().is_some_and(|t| t.kind == TagKind::Merge);
                    let merge_key = value == "<<"
                        && if merge {
                            true
                        } else {
                            tag.is_none() && *style == ScalarStyle::Plain
                        };
                    let tag_len = if merge { Tag::merge().budget_len } else { 0 };
                    self.budget.scalar(value.len(), tag_len, 0, merge_key)
                }
                Ev::Start { map, .. } => self.budget.start(*map, 0, 0),
                Ev::End { map } => self.budget.end(*map),
            };
            charged.map_err(|b| Self::breach(b, rec.span))?;
            self.record(&rec.ev, rec.span, None)?;
            self.node_event(rec.ev.clone(), at, rec.span)?;
        }
        Ok(())
    }

    /// One node event into the tree: `span` is where the node stands, `defined` where it
    /// was written.
    fn node_event(&mut self, ev: Ev<'a>, span: Span, defined: Span) -> Result<(), YamlError> {
        match ev {
            Ev::Scalar { value, style, tag } => {
                self.scalar(value, style, tag.as_deref(), span, defined)
            }
            Ev::Start { map, .. } => {
                let (merging, in_merge, in_key) = match self.stack.last() {
                    Some(parent) => (
                        matches!(
                            parent.collection,
                            Collection::MergeList(_)
                                | Collection::Map(MapFrame {
                                    slot: Slot::MergeValue,
                                    ..
                                })
                        ),
                        parent.merging(),
                        parent.in_key
                            || matches!(
                                parent.collection,
                                Collection::Map(MapFrame {
                                    slot: Slot::Key,
                                    ..
                                })
                            ),
                    ),
                    None => (false, false, false),
                };
                let collection = if map {
                    Collection::Map(MapFrame {
                        entries: Vec::new(),
                        keys: Keys {
                            list: self.spare_keys.pop().unwrap_or_default(),
                            index: None,
                        },
                        slot: Slot::Key,
                        merges: Vec::new(),
                        errors: Vec::new(),
                    })
                } else if merging {
                    Collection::MergeList(Vec::new())
                } else {
                    Collection::Seq(Vec::new())
                };
                let streamed = self.streamed(&collection);
                self.stack.push(Frame {
                    collection,
                    span,
                    defined,
                    in_merge,
                    deferred: None,
                    in_key,
                    streamed,
                });
                Ok(())
            }
            Ev::End { .. } => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let done = self.finish(frame)?;
                self.done(done)
            }
        }
    }

    fn scalar(
        &mut self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: Span,
        defined: Span,
    ) -> Result<(), YamlError> {
        let kind = scalar::kind_of_opt(tag);
        let Some(frame) = self.stack.last_mut() else {
            let value = scalar::resolve(value, kind, style).map_err(|kind| {
                // A document that is one integer out of range has no place more exact than
                // its start.
                let at = match kind {
                    YamlErrorKind::IntegerTooLarge(_) => Span::default(),
                    _ => defined,
                };
                YamlError::new(kind, at)
            })?;
            self.root = Some(Node { value, span });
            return Ok(());
        };
        let in_merge = frame.in_merge;
        let in_key = frame.in_key;
        // Inside a key, a problem waits until the whole key is read.
        let soft = |error: YamlError, key_error: &mut Option<YamlError>| {
            if in_key {
                key_error.get_or_insert(error);
                Ok(())
            } else {
                Err(error)
            }
        };
        match &mut frame.collection {
            Collection::Map(MapFrame {
                slot: slot @ Slot::Key,
                keys,
                ..
            }) => {
                if value == "<<"
                    && (kind == TagKind::Merge
                        || (kind == TagKind::None && style == ScalarStyle::Plain))
                {
                    *slot = Slot::MergeValue;
                    return Ok(());
                }
                let fingerprint = fingerprint(&value, tag, style);
                if keys.contains(&fingerprint) {
                    let key = kind.can_be_string().then(|| value.clone().into_owned());
                    soft(
                        YamlError::new(YamlErrorKind::DuplicateKey(key), defined),
                        &mut self.key_error,
                    )?;
                }
                let (name, error) = match scalar::resolve(value, kind, style) {
                    Ok(resolved) => (key_name(resolved).unwrap_or_default(), None),
                    Err(kind) if in_merge => (String::new(), Some(YamlError::new(kind, defined))),
                    Err(kind) => {
                        soft(YamlError::new(kind, defined), &mut self.key_error)?;
                        (String::new(), None)
                    }
                };
                *slot = Slot::Value(Key { name, span }, fingerprint, error);
                Ok(())
            }
            // A scalar under `<<`: nothing if null, else not something to merge.
            Collection::MergeList(_)
            | Collection::Map(MapFrame {
                slot: Slot::MergeValue,
                ..
            }) => {
                if let Collection::Map(map) = &mut frame.collection {
                    map.slot = Slot::Key;
                }
                if scalar::is_null(kind, &value, style) {
                    return Ok(());
                }
                soft(
                    YamlError::new(YamlErrorKind::MergeValue, defined),
                    &mut self.key_error,
                )
            }
            _ => {
                let done = match scalar::resolve(value, kind, style) {
                    Ok(value) => Done::leaf(Node { value, span }, defined),
                    Err(kind) if in_merge => {
                        let mut done = Done::leaf(
                            Node {
                                value: Value::Null,
                                span,
                            },
                            defined,
                        );
                        done.errors.push((0, YamlError::new(kind, defined)));
                        done
                    }
                    Err(kind) => {
                        soft(YamlError::new(kind, defined), &mut self.key_error)?;
                        Done::leaf(
                            Node {
                                value: Value::Null,
                                span,
                            },
                            defined,
                        )
                    }
                };
                self.done(done)
            }
        }
    }

    /// Whether a list starting now is streamed: it is the value of one of the `lists` keys of
    /// the top-level mapping.
    fn streamed(&self, collection: &Collection<'_>) -> Option<(&'static str, usize)> {
        let ([root], Collection::Seq(_)) = (self.stack.as_slice(), collection) else {
            return None;
        };
        let Collection::Map(MapFrame {
            slot: Slot::Value(key, ..),
            ..
        }) = &root.collection
        else {
            return None;
        };
        let list = self.lists.iter().find(|list| **list == key.name)?;
        Some((list, 0))
    }

    /// A collection that ended: a list, a mapping with its merges applied, or the entries
    /// of a list under `<<`.
    fn finish(&mut self, frame: Frame<'a>) -> Result<Done<'a>, YamlError> {
        let node = |value| Node {
            value,
            span: frame.span,
        };
        // A finished collection gives back what it grew beyond its size: the tree of a large
        // file is mostly small lists and mappings. Not inside an item of a streamed list,
        // which is dropped as soon as it is read.
        let shrink =
            !(self.sink.is_some() && self.stack.get(1).is_some_and(|f| f.streamed.is_some()));
        Ok(match frame.collection {
            Collection::Seq(mut items) => {
                if shrink {
                    items.shrink_to_fit();
                }
                Done {
                    errors: frame.deferred.into_iter().map(|e| (0, e)).collect(),
                    ..Done::leaf(node(Value::Seq(items)), frame.defined)
                }
            }
            Collection::MergeList(merged) => Done {
                merged: Some(merged),
                ..Done::leaf(node(Value::Seq(Vec::new())), frame.defined)
            },
            Collection::Map(mut map) => {
                for merged in map.merges {
                    if map.keys.contains(&merged.fingerprint) {
                        continue;
                    }
                    if let Some(error) = merged.error {
                        if !frame.in_merge {
                            return Err(error);
                        }
                        map.errors.push((map.entries.len(), error));
                    }
                    map.keys.insert(merged.fingerprint);
                    map.entries.push((merged.key, merged.value));
                }
                if shrink {
                    map.entries.shrink_to_fit();
                }
                Done {
                    keys: Some(map.keys.list),
                    errors: map.errors,
                    ..Done::leaf(node(Value::Map(map.entries)), frame.defined)
                }
            }
        })
    }

    /// A finished node into its parent.
    fn done(&mut self, mut done: Done<'a>) -> Result<(), YamlError> {
        // A mapping's keys are needed only to merge it into another.
        let merging = self.stack.last().is_some_and(|frame| {
            matches!(
                frame.collection,
                Collection::MergeList(_)
                    | Collection::Map(MapFrame {
                        slot: Slot::MergeValue,
                        ..
                    })
            )
        });
        if !merging && let Some(mut list) = done.keys.take() {
            list.clear();
            self.spare_keys.push(list);
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(done.node);
            return Ok(());
        };
        match &mut frame.collection {
            Collection::Seq(items) => {
                if frame.deferred.is_none() && !done.errors.is_empty() {
                    frame.deferred = Some(done.errors.swap_remove(0).1);
                }
                match (&mut frame.streamed, &mut self.sink) {
                    (Some((list, count)), Some(sink)) => {
                        sink(list, *count, done.node);
                        *count += 1;
                    }
                    _ => items.push(done.node),
                }
            }
            Collection::MergeList(merged) => merged.extend(merge_entries(done)?),
            Collection::Map(map) => match std::mem::replace(&mut map.slot, Slot::Key) {
                // A list or mapping where a key belongs.
                Slot::Key => {
                    let error = YamlError::new(YamlErrorKind::KeyNotScalar, done.node.span);
                    if frame.in_key {
                        self.key_error.get_or_insert(error);
                    } else {
                        return Err(self.key_error.take().unwrap_or(error));
                    }
                    map.slot = Slot::Value(
                        Key {
                            name: String::new(),
                            span: done.node.span,
                        },
                        Fingerprint::Int {
                            negative: false,
                            magnitude: 0,
                        },
                        None,
                    );
                }
                Slot::Value(key, fingerprint, key_error) => {
                    if let Some(error) = key_error
                        .or_else(|| (!done.errors.is_empty()).then(|| done.errors.swap_remove(0).1))
                    {
                        map.errors.push((map.entries.len(), error));
                    }
                    map.keys.insert(fingerprint);
                    map.entries.push((key, done.node));
                }
                Slot::MergeValue => {
                    let entries = merge_entries(done)?;
                    map.merges.extend(entries);
                }
            },
        }
        Ok(())
    }

    fn scan_error(&self, err: &ScanError) -> YamlError {
        let marker = err.marker();
        let at = offset_of(self.source, marker.line(), marker.col() + 1).min(self.source.len());
        let message = err.info();
        let find = |c: char, len: usize| {
            let found = self.source[at..].find(c).map_or(at, |i| at + i);
            Span::new(found, len.min(self.source.len() - found))
        };
        match err.kind() {
            ErrorKind::UnknownAnchor => {
                YamlError::new(YamlErrorKind::UnknownAnchor, Span::new(at, 0))
            }
            // Located at the backslash, not at the opening quote.
            ErrorKind::UnknownQuotedScalarEscape => {
                YamlError::new(YamlErrorKind::UnknownEscape(message), find('\\', 2))
            }
            // Located at the tab itself, on its own line.
            ErrorKind::TabInPlainScalar => {
                YamlError::new(YamlErrorKind::Tab(message), find('\t', 1))
            }
            ErrorKind::RecursionLimitExceeded
            | ErrorKind::AnchorCountOverflow
            | ErrorKind::DirectiveByteLimitExceeded { .. }
            | ErrorKind::TooManyReservedDirectiveParams { .. }
            | ErrorKind::InputByteLimitExceeded { .. }
            | ErrorKind::MissingAnchorOrAliasName => {
                YamlError::new(YamlErrorKind::ParserLimit(message), Span::new(at, 0))
            }
            ErrorKind::MultipleDocumentsUnsupported => YamlError::new(
                YamlErrorKind::Budget(Breach::Documents { documents: 2 }),
                Span::new(at, 0),
            ),
            _ => YamlError::new(YamlErrorKind::Syntax(message), Span::new(at, 0)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    Seq,
    Map,
}

/// A tag that names another kind of node than the one it is on (`!!int` on a mapping).
fn check_tag(
    tag: Option<&Tag>,
    original: Option<String>,
    shape: Shape,
    span: Span,
) -> Result<(), YamlError> {
    let Some(tag) = tag else {
        return Ok(());
    };
    let needs = match tag.kind {
        TagKind::Seq => Shape::Seq,
        TagKind::Map => Shape::Map,
        TagKind::None | TagKind::NonSpecific | TagKind::Other => return Ok(()),
        _ => Shape::Scalar,
    };
    if needs == shape {
        return Ok(());
    }
    let kind = if tag.kind == TagKind::Include {
        YamlErrorKind::IncludeForm
    } else {
        YamlErrorKind::UnsupportedTag(original.unwrap_or_default())
    };
    Err(YamlError::new(kind, span))
}

/// The name of a key: its text, or the text of its value (`1`, `true`); null is empty.
fn key_name(value: Value) -> Option<String> {
    Some(match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// The entries a `<<` value brings: a mapping's, a list of mappings', or none for null.
/// They stand where the merged mapping is referred to.
fn merge_entries(done: Done<'_>) -> Result<Vec<Merged<'_>>, YamlError> {
    if let Some(merged) = done.merged {
        return Ok(merged);
    }
    let span = done.node.span;
    let mut errors = done.errors.into_iter().peekable();
    match done.node.value {
        Value::Null => Ok(Vec::new()),
        Value::Map(entries) => Ok(entries
            .into_iter()
            .zip(done.keys.unwrap_or_default())
            .enumerate()
            .map(|(i, ((key, mut value), fingerprint))| {
                value.span = span;
                Merged {
                    key: Key {
                        name: key.name,
                        span,
                    },
                    value,
                    fingerprint,
                    error: errors.next_if(|(at, _)| *at == i).map(|(_, e)| e),
                }
            })
            .collect()),
        _ => Err(YamlError::new(YamlErrorKind::MergeValue, done.defined)),
    }
}

/// Byte offset of a 1-based line and character column.
fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(l.len(), |(i, _)| i);
        }
        offset += l.len();
    }
    source.len()
}
