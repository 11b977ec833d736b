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
    use super::eliminate_views;
    use crate::passes::testing::{check, snapshot_pass};

    #[test]
    fn consumers_read_the_buffer_under_every_relabeling() {
        check(
            eliminate_views,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = view(%2) -> f32[1,1,2,4]
            %4 = transpose 1,2(%3) -> f32[1,2,1,4]
            %5 = reshape(%4) -> f32[1,8]
            %6 = unsqueeze dim=0(%5) -> f32[1,1,8]
            %7 = silu(%6) -> f32[1,1,8]
            output x = %7
            ",
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = silu(%2) -> f32[1,1,8]
            output x = %3
            ",
        );
    }

    #[test]
    fn a_view_that_is_an_output_hands_out_its_input() {
        check(
            eliminate_views,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = view(%2) -> f32[8]
            output x = %3
            ",
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            output x = %2
            ",
        );
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("eliminate_views"));
    }
}
