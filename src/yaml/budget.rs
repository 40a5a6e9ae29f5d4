//! The resource budget of one YAML text: how many events, nodes, aliases and anchors it may
//! produce, how deep it may nest and how much alias replay it may cause. A hostile file (an
//! alias bomb, ten thousand nested brackets) is refused here before it costs memory or time.

use std::collections::HashSet;

use crate::load::MAX_FILE_BYTES;

/// Nesting deeper than this is refused (the model is at most a dozen levels deep).
pub const MAX_DEPTH: usize = 48;
const MAX_NODES: usize = 8_000_000;
const MAX_EVENTS: usize = 16_000_000;
const MAX_ALIASES: usize = 10_000;
const MAX_ANCHORS: usize = 10_000;
const MAX_DOCUMENTS: usize = 1;
const MAX_SCALAR_BYTES: usize = 64 * 1024 * 1024;
const MAX_MERGE_KEYS: usize = 10_000;
const MAX_RECORDED_ANCHOR_EVENTS: usize = 1_000_000;
const MAX_RECORDED_ANCHOR_BYTES: usize = 64 * 1024 * 1024;
/// From this many aliases on, there must be at least one anchor per ten aliases.
const ALIAS_RATIO_MIN_ALIASES: usize = 100;
const ALIAS_RATIO_MULTIPLIER: usize = 10;
/// Events replayed by all aliases together.
pub const MAX_REPLAYED_EVENTS: usize = 20_000;
/// Aliases of one anchor.
pub const MAX_EXPANSIONS_PER_ANCHOR: usize = 1_000;

// The file size limit is checked before parsing; the scalar budget cannot be reached first.
const _: () = assert!(MAX_FILE_BYTES as usize <= MAX_SCALAR_BYTES);

/// Which budget ran out, and the count that crossed it. `Debug` is the wording of messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breach {
    Events { events: usize },
    Aliases { aliases: usize },
    Anchors { anchors: usize },
    Depth { depth: usize },
    Documents { documents: usize },
    Nodes { nodes: usize },
    ScalarBytes { total_scalar_bytes: usize },
    MergeKeys { merge_keys: usize },
    AliasAnchorRatio { aliases: usize, anchors: usize },
    SequenceUnbalanced,
    RecordedAnchorEvents { recorded_anchor_events: usize },
    RecordedAnchorBytes { recorded_anchor_bytes: usize },
}

#[derive(Clone, Copy)]
enum Container {
    Seq {
        from_mapping_value: bool,
    },
    Map {
        expecting_key: bool,
        from_mapping_value: bool,
    },
}

/// The counts so far, checked against the limits at each event.
#[derive(Default)]
pub struct Budget {
    events: usize,
    nodes: usize,
    depth: usize,
    aliases: usize,
    anchors: HashSet<usize>,
    documents: usize,
    scalar_bytes: usize,
    merge_keys: usize,
    recorded_events: usize,
    recorded_bytes: usize,
    containers: Vec<Container>,
}

impl Budget {
    fn event(&mut self) -> Result<(), Breach> {
        self.events += 1;
        if self.events > MAX_EVENTS {
            return Err(Breach::Events {
                events: self.events,
            });
        }
        Ok(())
    }

    /// Stream start and end, document end.
    pub fn marker(&mut self) -> Result<(), Breach> {
        self.event()
    }

    pub fn document_start(&mut self) -> Result<(), Breach> {
        self.event()?;
        self.documents += 1;
        if self.documents > MAX_DOCUMENTS {
            return Err(Breach::Documents {
                documents: self.documents,
            });
        }
        Ok(())
    }

    /// A scalar of `bytes` bytes with a tag of `tag_len` bytes; `merge_key` when it is a
    /// plain `<<` or one tagged `!!merge`.
    pub fn scalar(
        &mut self,
        bytes: usize,
        tag_len: usize,
        anchor: usize,
        merge_key: bool,
    ) -> Result<(), Breach> {
        self.event()?;
        self.node()?;
        self.scalar_bytes(bytes.saturating_add(tag_len))?;
        self.anchor(anchor)?;
        if let Some(Container::Map { expecting_key, .. }) = self.containers.last_mut() {
            if *expecting_key {
                if merge_key {
                    self.merge_keys += 1;
                    if self.merge_keys > MAX_MERGE_KEYS {
                        return Err(Breach::MergeKeys {
                            merge_keys: self.merge_keys,
                        });
                    }
                }
                *expecting_key = false;
            } else {
                self.finish_value();
            }
        }
        Ok(())
    }

    pub fn start(&mut self, map: bool, tag_len: usize, anchor: usize) -> Result<(), Breach> {
        self.event()?;
        self.node()?;
        self.depth = self.depth.saturating_add(1);
        if self.depth > MAX_DEPTH {
            return Err(Breach::Depth { depth: self.depth });
        }
        self.scalar_bytes(tag_len)?;
        let from_mapping_value = match self.containers.last_mut() {
            Some(Container::Map { expecting_key, .. }) => !std::mem::replace(expecting_key, false),
            _ => false,
        };
        self.containers.push(if map {
            Container::Map {
                expecting_key: true,
                from_mapping_value,
            }
        } else {
            Container::Seq { from_mapping_value }
        });
        self.anchor(anchor)
    }

    pub fn end(&mut self, map: bool) -> Result<(), Breach> {
        self.event()?;
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or(Breach::SequenceUnbalanced)?;
        let from_mapping_value = match (map, self.containers.pop()) {
            (false, Some(Container::Seq { from_mapping_value }))
            | (
                true,
                Some(Container::Map {
                    from_mapping_value, ..
                }),
            ) => from_mapping_value,
            _ => return Err(Breach::SequenceUnbalanced),
        };
        if from_mapping_value {
            self.finish_value();
        }
        Ok(())
    }

    /// An alias in the text (its replayed nodes are counted one by one as they come).
    pub fn alias(&mut self) -> Result<(), Breach> {
        self.event()?;
        self.aliases += 1;
        if self.aliases > MAX_ALIASES {
            return Err(Breach::Aliases {
                aliases: self.aliases,
            });
        }
        Ok(())
    }

    /// One copy of an event kept for an anchor, `bytes` of it owned text.
    pub fn recorded(&mut self, bytes: usize) -> Result<(), Breach> {
        self.recorded_events = self.recorded_events.saturating_add(1);
        if self.recorded_events > MAX_RECORDED_ANCHOR_EVENTS {
            return Err(Breach::RecordedAnchorEvents {
                recorded_anchor_events: self.recorded_events,
            });
        }
        self.recorded_bytes = self.recorded_bytes.saturating_add(bytes);
        if self.recorded_bytes > MAX_RECORDED_ANCHOR_BYTES {
            return Err(Breach::RecordedAnchorBytes {
                recorded_anchor_bytes: self.recorded_bytes,
            });
        }
        Ok(())
    }

    /// The checks that need the whole text: many aliases of few anchors.
    pub fn finish(&self) -> Result<(), Breach> {
        let anchors = self.anchors.len();
        if self.aliases >= ALIAS_RATIO_MIN_ALIASES
            && (anchors == 0 || self.aliases > ALIAS_RATIO_MULTIPLIER.saturating_mul(anchors))
        {
            return Err(Breach::AliasAnchorRatio {
                aliases: self.aliases,
                anchors,
            });
        }
        Ok(())
    }

    fn node(&mut self) -> Result<(), Breach> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Breach::Nodes { nodes: self.nodes });
        }
        Ok(())
    }

    fn scalar_bytes(&mut self, bytes: usize) -> Result<(), Breach> {
        self.scalar_bytes = self.scalar_bytes.saturating_add(bytes);
        if self.scalar_bytes > MAX_SCALAR_BYTES {
            return Err(Breach::ScalarBytes {
                total_scalar_bytes: self.scalar_bytes,
            });
        }
        Ok(())
    }

    fn anchor(&mut self, anchor: usize) -> Result<(), Breach> {
        if anchor != 0 && self.anchors.insert(anchor) && self.anchors.len() > MAX_ANCHORS {
            return Err(Breach::Anchors {
                anchors: self.anchors.len(),
            });
        }
        Ok(())
    }

    fn finish_value(&mut self) {
        if let Some(Container::Map { expecting_key, .. }) = self.containers.last_mut() {
            *expecting_key = true;
        }
    }
}
