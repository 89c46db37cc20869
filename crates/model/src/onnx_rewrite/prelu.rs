//! PRelu in the ops tract runs fast.
use std::collections::HashSet;

use anyhow::{Context, Result};
use tract_onnx::pb::ModelProto;

use super::dtype;
use super::graph::single_output_node;
use super::tensor::{float_tensor, float_values};

/// Rewrites every `PRelu(x, slope)` into ops tract runs much faster than its
/// own PRelu lowering (compare, multiply, select): `Max(x, slope · x)` when
/// every slope is at most 1 (then the larger of the two is exactly PRelu),
/// otherwise `Relu(x) + slope · Min(x, 0)`. Returns how many were rewritten.
pub fn rewrite_prelu(model: &mut ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let zero = "__prelu_zero".to_string();
    let slopes_at_most_one: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == dtype::FLOAT && float_values(t).is_ok_and(|v| v.iter().all(|a| *a <= 1.0)))
        .map(|t| t.name.clone())
        .collect();
    let mut needs_zero = false;
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut count = 0;
    for n in graph.node.drain(..) {
        if n.op_type != "PRelu" || n.input.len() != 2 || n.output.len() != 1 {
            nodes.push(n);
            continue;
        }
        let (x, slope, out) = (n.input[0].clone(), n.input[1].clone(), n.output[0].clone());
        let name = if n.name.is_empty() { out.clone() } else { n.name.clone() };
        let part = |s: &str| format!("{name}__prelu_{s}");
        let node = single_output_node;
        if slopes_at_most_one.contains(&slope) {
            nodes.push(node("Mul", vec![x.clone(), slope], part("scaled")));
            nodes.push(node("Max", vec![x, part("scaled")], out));
        } else {
            nodes.push(node("Relu", vec![x.clone()], part("pos")));
            nodes.push(node("Min", vec![x, zero.clone()], part("neg")));
            nodes.push(node("Mul", vec![part("neg"), slope], part("scaled")));
            nodes.push(node("Add", vec![part("pos"), part("scaled")], out));
            needs_zero = true;
        }
        count += 1;
    }
    graph.node = nodes;
    if needs_zero && !graph.initializer.iter().any(|t| t.name == zero) {
        graph.initializer.push(float_tensor(&zero, &[], &[0.0]));
    }
    Ok(count)
}
