//! The steps as a directed acyclic graph: an edge runs from a step to each step that needs it.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::Runbook;

/// The dependency graph of a validated runbook. Node `i` is `runbook.steps[i]`.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<(), ()>,
    /// Looked up for every `needs` entry and step reference: a fast hash, not SipHash.
    index: foldhash::HashMap<String, usize>,
}

impl Dag {
    /// Builds the graph from `needs`, ignoring names that are not steps (validation reports
    /// those) and the first of duplicate ids winning.
    pub fn new(runbook: &Runbook) -> Self {
        let mut graph = DiGraph::with_capacity(runbook.steps.len(), runbook.steps.len());
        let mut index = foldhash::HashMap::with_capacity_and_hasher(
            runbook.steps.len(),
            foldhash::fast::RandomState::default(),
        );
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
        if let Some(descendants) = scratch.kept.get(&ancestor) {
            return descendants.contains(step);
        }
        scratch.reset(self.len());
        let mut stack = vec![step];
        let mut walked = 0;
        let mut found = false;
        'walk: while let Some(node) = stack.pop() {
            walked += 1;
            for parent in self.parents(node) {
                if parent == ancestor {
                    found = true;
                    break 'walk;
                }
                if scratch.visit(parent) {
                    stack.push(parent);
                }
            }
        }
        scratch.walked(self, ancestor, walked);
        found
    }

    /// Every step that needs `step`, directly or not.
    fn descendants(&self, step: usize) -> Bits {
        let mut set = Bits(vec![0; self.len().div_ceil(64)]);
        let mut stack = vec![step];
        while let Some(node) = stack.pop() {
            for child in self.children(node) {
                if set.insert(child) {
                    stack.push(child);
                }
            }
        }
        set
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

/// Reusable visited-marks for the walks of one graph, so repeated queries do not allocate;
/// and the descendants of the steps whose walks have cost as much as the graph: a step that
/// every other step reads (a `prepare` whose output all use) then costs one walk, not one
/// per reader, while a step read close by is never worth a set.
#[derive(Debug, Default)]
pub struct Scratch {
    marks: Vec<u32>,
    epoch: u32,
    /// Steps walked so far in the walks looking for a given ancestor.
    walks: HashMap<usize, usize>,
    kept: HashMap<usize, Bits>,
    /// Bits held by the kept sets.
    bits_kept: usize,
}

/// Descendant sets are kept up to this many bits in all (16 MiB: 1,342 sets of a
/// 100,000-step graph); past it, each question walks the graph again.
const MAX_KEPT_BITS: usize = 128 << 20;

/// One bit per step.
#[derive(Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn contains(&self, step: usize) -> bool {
        self.0
            .get(step / 64)
            .is_some_and(|word| word & (1 << (step % 64)) != 0)
    }

    /// Sets the bit of `step`; false when it was set already.
    fn insert(&mut self, step: usize) -> bool {
        let (word, bit) = (&mut self.0[step / 64], 1 << (step % 64));
        let new = *word & bit == 0;
        *word |= bit;
        new
    }
}

impl Scratch {
    /// A walk looking for `ancestor` visited `steps` steps: once such walks have cost as
    /// much as one walk of the whole graph, the descendants of `ancestor` are kept.
    fn walked(&mut self, dag: &Dag, ancestor: usize, steps: usize) {
        let cost = self.walks.entry(ancestor).or_default();
        *cost = cost.saturating_add(steps);
        let bits = dag.len().div_ceil(64) * 64;
        if *cost >= dag.len() && self.bits_kept.saturating_add(bits) <= MAX_KEPT_BITS {
            self.bits_kept += bits;
            self.kept.insert(ancestor, dag.descendants(ancestor));
        }
    }

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

#[cfg(test)]
mod tests {
    use super::{Dag, Scratch};

    /// Every answer agrees with the ancestors computed from the `needs` directly: the first
    /// questions about a step walk the graph, the later ones read its kept set.
    #[test]
    fn is_ancestor_agrees_with_the_needs_whether_sets_are_kept_or_not() {
        let n = 300;
        let mut yaml = String::from("runbook: 1\nname: t\nsteps:\n");
        let mut needs: Vec<Vec<usize>> = Vec::new();
        let mut seed = 7_u64;
        for i in 0..n {
            let mut mine = Vec::new();
            for _ in 0..2.min(i) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let parent = (seed >> 33) as usize % i;
                if !mine.contains(&parent) {
                    mine.push(parent);
                }
            }
            let list: Vec<String> = mine.iter().map(|p| format!("s{p}")).collect();
            yaml.push_str(&format!(
                "  - {{ id: s{i}, needs: [{}], wait: 1s }}\n",
                list.join(", ")
            ));
            needs.push(mine);
        }
        let (runbook, problems) = crate::load::parse(&yaml);
        assert!(problems.is_empty(), "{problems:?}");
        let dag = Dag::new(&runbook.expect("a runbook"));
        // Steps only need earlier ones: ancestors in declaration order.
        let mut ancestors: Vec<Vec<bool>> = Vec::with_capacity(n);
        for mine in &needs {
            let mut row = vec![false; n];
            for &p in mine {
                row[p] = true;
                for (a, &of_parent) in row.iter_mut().zip(&ancestors[p]) {
                    *a |= of_parent;
                }
            }
            ancestors.push(row);
        }
        let mut scratch = Scratch::default();
        for (step, row) in ancestors.iter().enumerate().rev() {
            for (ancestor, &expected) in row.iter().enumerate() {
                assert_eq!(
                    dag.is_ancestor(ancestor, step, &mut scratch),
                    expected,
                    "s{ancestor} before s{step}"
                );
            }
        }
        assert!(!scratch.kept.is_empty(), "no set was kept");
    }
}
