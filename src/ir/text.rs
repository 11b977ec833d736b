//! The graph as text: [`Graph::listing`] (what the pass snapshots show) and its inverse
//! [`Graph::parse`], so a pass can be tested on a small graph written by hand. One line per node,
//! numbered in schedule order, then the graph's outputs in name order:
//!
//! ```text
//! %0 = token_id() -> i32[1,1]  # input_ids
//! %1 = weight embed() -> bf16[32,8]  # embed
//! %2 = embedding(%1, %0) -> f32[1,1,8]  # embed_tokens
//! output hidden = %2
//! ```
//!
//! An input names a node's number, with `.port` where the node has several outputs. The
//! `# label` (where the node comes from in the model) may be left out of a hand-written line.

use super::graph::{Graph, Value};
use super::op::Op;
use super::types::{DType, TensorType};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::NodeIndexable;

/// Why a line of a listing does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

impl Graph {
    /// One line per node in schedule order, `%n = kind attrs(inputs) -> types  # label`, then
    /// `output name = %n` per graph output.
    pub fn listing(&self) -> String {
        use std::fmt::Write;
        let order = self.schedule();
        let mut num = vec![usize::MAX; self.g.node_bound()];
        for (i, n) in order.iter().enumerate() {
            num[n.index()] = i;
        }
        let fmt_value = |v: Value| {
            if self.g[v.node].outputs.len() > 1 {
                format!("%{}.{}", num[v.node.index()], v.port)
            } else {
                format!("%{}", num[v.node.index()])
            }
        };
        let mut s = String::new();
        for &n in &order {
            let node = &self.g[n];
            let ins: Vec<String> = self.inputs(n).into_iter().map(fmt_value).collect();
            let outs: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
            let attrs = node.op.attrs();
            let attrs = if attrs.is_empty() { String::new() } else { format!(" {attrs}") };
            let label = if node.label.is_empty() { String::new() } else { format!("  # {}", node.label) };
            let _ = writeln!(s, "%{} = {}{}({}) -> {}{label}", num[n.index()], node.op.kind(), attrs, ins.join(", "), outs.join(", "));
        }
        for (name, v) in &self.outputs {
            let _ = writeln!(s, "output {name} = {}", fmt_value(*v));
        }
        s
    }

    /// The graph a listing describes: `Graph::parse(&g.listing())` lists as `g` does. Nodes are
    /// numbered from 0 in order and name only earlier nodes as inputs, so the graph is acyclic
    /// and its schedule is the listing's order. Blank lines are skipped; lines may be indented.
    pub fn parse(text: &str) -> Result<Graph, ParseError> {
        let mut g = Graph::default();
        let mut nodes: Vec<NodeIndex> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = |reason: String| ParseError { line: i + 1, reason };
            if let Some(output) = line.strip_prefix("output ") {
                let (name, v) = output.split_once(" = ").ok_or_else(|| at("expected `output name = %n`".into()))?;
                let v = value(&g, &nodes, v.trim()).map_err(at)?;
                g.outputs.insert(name.trim().to_string(), v);
                continue;
            }
            if !g.outputs.is_empty() {
                return Err(at("a node after the outputs".into()));
            }
            let n = node(&mut g, &nodes, line).map_err(at)?;
            nodes.push(n);
        }
        Ok(g)
    }
}

/// Adds the node of one line and returns it; `nodes` are the nodes of the lines before.
fn node(g: &mut Graph, nodes: &[NodeIndex], line: &str) -> Result<NodeIndex, String> {
    let (body, label) = match line.split_once('#') {
        Some((body, label)) => (body.trim(), label.trim()),
        None => (line, ""),
    };
    let (number, body) = body.split_once(" = ").ok_or("expected `%n = kind(inputs) -> types`")?;
    if number != format!("%{}", nodes.len()) {
        return Err(format!("expected node %{} here, found `{number}` (nodes are numbered in order from %0)", nodes.len()));
    }
    let (call, types) = body.split_once(" -> ").ok_or("expected ` -> ` and the output types")?;
    let (head, inputs) = call.strip_suffix(')').and_then(|c| c.split_once('(')).ok_or("expected `kind attrs(inputs)`")?;
    let (kind, attrs) = head.split_once(' ').unwrap_or((head, ""));
    let op = Op::parse(kind, attrs)?;
    let inputs: Vec<Value> = inputs.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|v| value(g, nodes, v)).collect::<Result<_, _>>()?;
    let outputs: Vec<TensorType> = split_types(types).into_iter().map(tensor_type).collect::<Result<_, _>>()?;
    Ok(g.add(op, &inputs, outputs, label))
}

/// `%n` or `%n.port` of an earlier node; the port is given exactly where the node has several
/// outputs, as the listing writes it.
fn value(g: &Graph, nodes: &[NodeIndex], text: &str) -> Result<Value, String> {
    let bad = || format!("`{text}` is not a value (`%n`, or `%n.port` of a node with several outputs)");
    let rest = text.strip_prefix('%').ok_or_else(bad)?;
    let (number, port) = match rest.split_once('.') {
        Some((n, p)) => (n, Some(p.parse::<u8>().map_err(|_| bad())?)),
        None => (rest, None),
    };
    let index: usize = number.parse().map_err(|_| bad())?;
    let &node = nodes.get(index).ok_or_else(|| format!("`{text}` names a node not defined before it"))?;
    let outputs = g.node(node).outputs.len();
    match port {
        None if outputs == 1 => Ok(Value { node, port: 0 }),
        Some(port) if outputs > 1 && (port as usize) < outputs => Ok(Value { node, port }),
        _ => Err(format!("`{text}`: node %{index} has {outputs} outputs")),
    }
}

/// Splits `f32[1,8], i32[1]` at the commas between types, not those between dimensions.
fn split_types(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// `f32[1,1,8]`: a dtype and its dimensions.
fn tensor_type(text: &str) -> Result<TensorType, String> {
    let bad = || format!("`{text}` is not a tensor type like f32[1,8]");
    let (dtype, dims) = text.strip_suffix(']').and_then(|t| t.split_once('[')).ok_or_else(bad)?;
    let dtype = DType::parse(dtype).ok_or_else(bad)?;
    let shape: Vec<usize> = dims.split(',').filter(|d| !d.is_empty()).map(|d| d.trim().parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    Ok(TensorType { dtype, shape })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::ModelConfig;
    use std::path::Path;

    fn round_trips(g: &Graph) {
        let listing = g.compacted().listing();
        let parsed = Graph::parse(&listing).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.listing(), listing);
    }

    #[test]
    fn the_tiny_model_round_trips_as_lowered_and_after_every_pass() {
        let mut g = crate::lower::lower(&crate::passes::testing::tiny_config(), 16);
        round_trips(&g);
        for pass in crate::passes::PASSES {
            g = (pass.run)(g);
            round_trips(&g);
        }
    }

    #[test]
    fn a_28_layer_reference_config_round_trips_lowered_and_fused() {
        let config = ModelConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs/qwen2.5-1.5b.json")).unwrap();
        let lowered = crate::lower::lower(&config, 4096);
        round_trips(&lowered);
        round_trips(&crate::passes::optimize(lowered));
    }

    #[test]
    fn a_hand_written_graph_without_labels() {
        let text = "
            %0 = position() -> i32[1,1]
            %1 = weight rope_inv_freq() -> f32[2]
            %2 = rope_table(%1, %0) -> f32[1,1,4], f32[1,1,4]
            output sin = %2.1
        ";
        let g = Graph::parse(text).unwrap();
        crate::ir::verify(&g).unwrap();
        assert_eq!(g.listing(), text.trim().lines().map(|l| format!("{}\n", l.trim())).collect::<String>());
    }

    #[test]
    fn each_mistake_is_named_with_its_line() {
        let cases = [
            ("%1 = position() -> i32[1,1]", "line 1: expected node %0 here, found `%1` (nodes are numbered in order from %0)"),
            ("%0 = silu(%0) -> f32[8]", "line 1: `%0` names a node not defined before it"),
            ("%0 = frobnicate() -> f32[8]", "line 1: unknown op kind `frobnicate`"),
            ("%0 = cast to=f64() -> f32[8]", "line 1: cast: `to=f64` is not a dtype (bf16, f16, f32, i32)"),
            ("%0 = linear biased() -> f32[8]", "line 1: linear: unexpected `biased`"),
            ("%0 = weight layers.0.w_proj() -> f32[8]", "line 1: weight: `layers.0.w_proj` is not a weight name"),
            ("%0 = position() -> i32[1,x]", "line 1: `i32[1,x]` is not a tensor type like f32[1,8]"),
            ("%0 = position() -> i32[1]\n%1 = silu(%0.1) -> f32[8]", "line 2: `%0.1`: node %0 has 1 outputs"),
        ];
        for (text, reason) in cases {
            assert_eq!(Graph::parse(text).map(|_| ()).unwrap_err().to_string(), reason, "{text}");
        }
    }
}
