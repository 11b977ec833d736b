//! Removes `view`, `reshape`, `unsqueeze` and `transpose` nodes: in a decode step every one of
//! them relabels a contiguous buffer without moving bytes (transposes swap a unit dimension), so
//! consumers can read the producer's buffer directly. Eager PyTorch pays a host-side dispatch
//! for each; here they become zero-copy aliases and vanish from the schedule.

use super::pattern::nodes_where;
use crate::ir::{Graph, Op};

pub fn eliminate_views(mut g: Graph) -> Graph {
    for n in nodes_where(&g, Op::is_view_like) {
        // `ir::verify` proves each keeps the element count, and that a transpose swaps a unit
        // dimension.
        let input = g.inputs(n)[0];
        g.replace_uses(n.into(), input);
        g.g.remove_node(n);
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("eliminate_views"));
    }
}
