//! Small matching helpers shared by the passes.

use crate::ir::{Graph, Op, Value};
use petgraph::stable_graph::NodeIndex;

/// The node producing `v` if its op satisfies `pred`.
pub fn producer(g: &Graph, v: Value, pred: impl Fn(&Op) -> bool) -> Option<NodeIndex> {
    pred(&g.node(v.node).op).then_some(v.node)
}

/// The node producing `v` if `v` has no other consumer than the node being fused, so fusing
/// removes it rather than duplicating work.
pub fn sole_producer(g: &Graph, v: Value, pred: impl Fn(&Op) -> bool) -> Option<NodeIndex> {
    let n = producer(g, v, pred)?;
    (g.users(v).len() == 1 && !g.is_output(v)).then_some(n)
}

/// Nodes of the graph whose op satisfies `pred`, in index order (stable across runs).
pub fn nodes_where(g: &Graph, pred: impl Fn(&Op) -> bool) -> Vec<NodeIndex> {
    g.g.node_indices().filter(|&n| pred(&g.node(n).op)).collect()
}
