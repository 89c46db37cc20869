//! A rewritten model made ready for ONNX Runtime, which takes any input size.
use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use tract_onnx::pb::ModelProto;

/// Prepares a rewritten model for a runtime that takes any input size (ONNX
/// Runtime): graph inputs that merely shadow initializers (old exporters list
/// weights as inputs, which keeps ONNX Runtime from treating them as
/// constants) are dropped, the first input's height and width become
/// symbolic, and the declared shapes of outputs and intermediate values
/// (fixed at export, 640x640 for YuNet) are cleared.
pub fn free_input_shape(model: &mut ModelProto) -> Result<()> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
    use tract_onnx::pb::type_proto::Value as Type;
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let weights: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.drain(..).filter(|i| !weights.contains(i.name.as_str())).collect();
    graph.input = inputs;
    ensure!(!graph.input.is_empty(), "the model has no data input");
    if let Some(Type::TensorType(t)) = graph.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
        && let Some(shape) = t.shape.as_mut()
    {
        for (i, d) in shape.dim.iter_mut().enumerate().skip(2) {
            d.value = Some(Dim::DimParam(format!("visage_dim{i}")));
        }
    }
    graph.value_info.clear();
    for o in &mut graph.output {
        if let Some(Type::TensorType(t)) = o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.shape = None;
        }
    }
    Ok(())
}
