//! Graph-to-graph rewrites, one per file, run in the order of [`PASSES`]. Each removes host-side
//! or memory-bound work that eager PyTorch does per token: after all of them a decoder layer is
//! only real kernels, and no cast, view, reshape, transpose or unsqueeze remains.

use crate::ir::Graph;

pub mod eliminate_views;
pub mod fold_casts;
pub mod fuse_gate_up;
pub mod fuse_lm_head;
pub mod fuse_norm_into_projection;
pub mod fuse_qkv_rope;
pub mod fuse_residual;
mod pattern;

#[cfg(test)]
pub(crate) mod testing;

/// A named pass. Every pass ends by dropping nodes that no longer feed an output.
pub struct Pass {
    pub name: &'static str,
    pub run: fn(Graph) -> Graph,
}

pub const PASSES: &[Pass] = &[
    Pass { name: "eliminate_views", run: eliminate_views::eliminate_views },
    Pass { name: "fold_casts", run: fold_casts::fold_casts },
    Pass { name: "fuse_residual", run: fuse_residual::fuse_residual },
    Pass { name: "fuse_qkv_rope", run: fuse_qkv_rope::fuse_qkv_rope },
    Pass { name: "fuse_gate_up", run: fuse_gate_up::fuse_gate_up },
    Pass { name: "fuse_lm_head", run: fuse_lm_head::fuse_lm_head },
    Pass { name: "fuse_norm_into_projection", run: fuse_norm_into_projection::fuse_norm_into_projection },
];

/// Runs every pass in order. In debug and test builds the graph is verified as lowered and
/// after each pass, so a pass that breaks an invariant is named where it does.
pub fn optimize(mut g: Graph) -> Graph {
    check(&g, "lowering");
    for pass in PASSES {
        g = (pass.run)(g);
        check(&g, pass.name);
    }
    g
}

/// `ir::verify` in debug and test builds; a failure is a bug in the stage `after`.
fn check(g: &Graph, after: &str) {
    if cfg!(any(debug_assertions, test)) {
        if let Err(e) = crate::ir::verify(g) {
            panic!("invalid graph after {after}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load::config::ModelConfig;
    use std::path::Path;

    /// `optimize` verifies the graph after every pass in test builds: the published 28-layer
    /// configs (plans/configs) go through every pass without breaking an invariant.
    #[test]
    fn the_published_configs_verify_after_every_pass() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&configs).unwrap() {
            let config = ModelConfig::from_file(&entry.unwrap().path()).unwrap();
            super::optimize(crate::lower::lower(&config, 4096));
            seen += 1;
        }
        assert!(seen >= 3, "{seen} configs in {}", configs.display());
    }
}
