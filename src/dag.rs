//! The steps as a directed acyclic graph: an edge runs from a step to each step that needs it.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::Runbook;

/// The dependency graph of a validated runbook. Node `i` is `runbook.steps[i]`.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<(), ()>,
    index: HashMap<String, usize>,
}

impl Dag {
    /// Builds the graph from `needs`, ignoring names that are not steps (validation reports
    /// those) and the first of duplicate ids winning.
    pub fn new(runbook: &Runbook) -> Self {
        let mut graph = DiGraph::with_capacity(runbook.steps.len(), runbook.steps.len());
        let mut index = HashMap::with_capacity(runbook.steps.len());
        for (i, step) in runbook.steps.iter().enumerate() {
            graph.add_node(());
            index.entry(step.id.value.clone()).or_insert(i);
        }
        for (i, step) in runbook.steps.iter().enumerate() {
            for (k, need) in step.needs.iter().enumerate() {
                // `update_edge` would scan the parent's edges: quadratic on a wide fan-out.
                let repeated = step.needs[..k].iter().any(|n| n.value == need.value);
                if let (Some(&from), false) = (index.get(need.as_str()), repeated) {
                    graph.add_edge(NodeIndex::new(from), NodeIndex::new(i), ());
                }
            }
        }
        Self { graph, index }
    }

    pub fn graph(&self) -> &DiGraph<(), ()> {
        &self.graph
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The steps `step` directly needs.
    pub fn parents(&self, step: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(step), Direction::Incoming)
            .map(NodeIndex::index)
    }

    /// The steps that directly need `step`.
    pub fn children(&self, step: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(step), Direction::Outgoing)
            .map(NodeIndex::index)
    }

    /// Whether `ancestor` must complete before `step` can start.
    pub fn is_ancestor(&self, ancestor: usize, step: usize, scratch: &mut Scratch) -> bool {
        if self.parents(step).any(|p| p == ancestor) {
            return true;
        }
        scratch.reset(self.len());
        let mut stack = vec![step];
        while let Some(node) = stack.pop() {
            for parent in self.parents(node) {
                if parent == ancestor {
                    return true;
                }
                if scratch.visit(parent) {
                    stack.push(parent);
                }
            }
        }
        false
    }

    /// Steps grouped in waves: each wave's steps need only steps of earlier waves, so a wave
    /// can run in parallel. Steps keep their declaration order within a wave. The waves come
    /// from the run's own ready queue. Steps on a cycle are left out.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let mut queue = crate::schedule::ReadyQueue::new(self);
        let mut waves = Vec::new();
        loop {
            let wave = queue.take_all();
            if wave.is_empty() {
                break;
            }
            for &step in &wave {
                queue.release(self, step);
            }
            waves.push(wave);
        }
        waves
    }
}

/// Reusable visited-marks for graph walks, so repeated queries do not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    marks: Vec<u32>,
    epoch: u32,
}

impl Scratch {
    fn reset(&mut self, len: usize) {
        if self.marks.len() < len {
            self.marks.resize(len, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; false when it was already marked since the last reset.
    fn visit(&mut self, node: usize) -> bool {
        if self.marks[node] == self.epoch {
            false
        } else {
            self.marks[node] = self.epoch;
            true
        }
    }
}
