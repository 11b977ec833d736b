//! The dataflow graph: petgraph nodes are ops, edges carry one output (port) of the producer to
//! one input (slot) of the consumer. Passes rewrite it; `schedule` orders it for execution.

use super::op::Op;
use super::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    pub outputs: Vec<TensorType>,
    /// Where this node comes from in the model, e.g. `layers.3.mlp`.
    pub label: String,
}

/// Which output of a node feeds which input of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operand {
    pub port: u8,
    pub slot: u8,
}

/// One output of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Value {
    pub node: NodeIndex,
    pub port: u8,
}

impl From<NodeIndex> for Value {
    fn from(node: NodeIndex) -> Self {
        Value { node, port: 0 }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    pub g: StableDiGraph<Node, Operand>,
    /// Values the step hands back: the sampled token and the logits.
    pub outputs: BTreeMap<String, Value>,
}

impl Graph {
    pub fn add(&mut self, op: Op, inputs: &[Value], outputs: Vec<TensorType>, label: &str) -> NodeIndex {
        let n = self.g.add_node(Node { op, outputs, label: label.to_string() });
        for (slot, v) in inputs.iter().enumerate() {
            self.g.add_edge(v.node, n, Operand { port: v.port, slot: slot as u8 });
        }
        n
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.g[n]
    }

    pub fn ty(&self, v: Value) -> &TensorType {
        &self.g[v.node].outputs[v.port as usize]
    }

    /// Inputs of `n` in slot order.
    pub fn inputs(&self, n: NodeIndex) -> Vec<Value> {
        let mut ins: Vec<(u8, Value)> =
            self.g.edges_directed(n, Direction::Incoming).map(|e| (e.weight().slot, Value { node: e.source(), port: e.weight().port })).collect();
        ins.sort_by_key(|(slot, _)| *slot);
        ins.into_iter().map(|(_, v)| v).collect()
    }

    /// Consumers of a value as (node, slot), in node order.
    pub fn users(&self, v: Value) -> Vec<(NodeIndex, u8)> {
        let mut us: Vec<(NodeIndex, u8)> =
            self.g.edges_directed(v.node, Direction::Outgoing).filter(|e| e.weight().port == v.port).map(|e| (e.target(), e.weight().slot)).collect();
        us.sort();
        us
    }

    /// The single consumer of `v`, if it has exactly one.
    pub fn sole_user(&self, v: Value) -> Option<NodeIndex> {
        match self.users(v).as_slice() {
            [(n, _)] if !self.is_output(v) => Some(*n),
            _ => None,
        }
    }

    pub fn is_output(&self, v: Value) -> bool {
        self.outputs.values().any(|o| *o == v)
    }

    /// Points every use of `old` (edges and graph outputs) at `new`.
    pub fn replace_uses(&mut self, old: Value, new: Value) {
        let edges: Vec<_> = self
            .g
            .edges_directed(old.node, Direction::Outgoing)
            .filter(|e| e.weight().port == old.port)
            .map(|e| (e.id(), e.target(), e.weight().slot))
            .collect();
        for (id, target, slot) in edges {
            self.g.remove_edge(id);
            self.g.add_edge(new.node, target, Operand { port: new.port, slot });
        }
        for o in self.outputs.values_mut() {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes nodes no graph output depends on.
    pub fn remove_dead(&mut self) {
        let mut live = vec![false; self.g.node_bound()];
        let mut stack: Vec<NodeIndex> = self.outputs.values().map(|v| v.node).collect();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut live[n.index()], true) {
                continue;
            }
            stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
        }
        let dead: Vec<NodeIndex> = self.g.node_indices().filter(|n| !live[n.index()]).collect();
        for n in dead {
            self.g.remove_node(n);
        }
    }

    /// A topological order that prefers lower node indices, so the order follows lowering
    /// and is the same on every run.
    pub fn schedule(&self) -> Vec<NodeIndex> {
        let mut indegree = vec![0usize; self.g.node_bound()];
        for e in self.g.edge_references() {
            indegree[e.target().index()] += 1;
        }
        let mut ready: BinaryHeap<Reverse<NodeIndex>> = self.g.node_indices().filter(|n| indegree[n.index()] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(self.g.node_count());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let t = e.target().index();
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        assert_eq!(order.len(), self.g.node_count(), "graph has a cycle");
        order
    }

    /// Number of nodes of each op kind.
    pub fn op_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for n in self.g.node_indices() {
            *counts.entry(self.g[n].op.kind().to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Compact renumbered copy: node indices become 0..n in schedule order, so listings and
    /// snapshots do not depend on the holes earlier rewrites left.
    pub fn compacted(&self) -> Graph {
        let order = self.schedule();
        let mut map = vec![NodeIndex::end(); self.g.node_bound()];
        let mut out = Graph::default();
        for &n in &order {
            let inputs: Vec<Value> = self.inputs(n).into_iter().map(|v| Value { node: map[v.node.index()], port: v.port }).collect();
            let node = &self.g[n];
            map[n.index()] = out.add(node.op.clone(), &inputs, node.outputs.clone(), &node.label);
        }
        for (name, v) in &self.outputs {
            out.outputs.insert(name.clone(), Value { node: map[v.node.index()], port: v.port });
        }
        out
    }
}
