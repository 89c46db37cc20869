//! The dlib ResNet as an ONNX graph, so both inference backends run it like
//! any other model. Shapes are tracked while building: the network's input
//! size is fixed, and dlib's `add_prev` zero-pads the smaller operand where
//! the two branches of a down-sampling block differ (in channels, and in
//! rows and columns at the 8x8 -> 3x3 / 4x4 step), which becomes an
//! explicit `Pad` before the `Add`. Each affine layer is folded into the
//! convolution before it.
use anyhow::{Context, Result, bail, ensure};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    ValueInfoProto, tensor_shape_proto, type_proto,
};

use super::resnet::{Layer, Network};
use crate::onnx_rewrite::{dtype, float_tensor};

/// The graph's input and output names.
pub const INPUT: &str = "chip";
pub const OUTPUT: &str = "descriptor";

/// A value in the graph and its `[channels, rows, cols]` shape (batch 1).
#[derive(Debug, Clone)]
struct Value {
    name: String,
    shape: [usize; 3],
}

struct Builder {
    graph: GraphProto,
    count: usize,
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 7, // INTS
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(tract_onnx::pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dtype::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Output side of a window sliding over `n` with the given geometry.
fn slide(n: usize, window: usize, stride: usize, pad: usize) -> Result<usize> {
    ensure!(n + 2 * pad >= window && stride > 0, "a {window}-wide window does not fit {n} + 2x{pad}");
    Ok((n + 2 * pad - window) / stride + 1)
}

impl Builder {
    fn node(&mut self, op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.graph.node.push(NodeProto {
            op_type: op.into(),
            name: out.clone(),
            input: inputs,
            output: vec![out.clone()],
            attribute,
            ..Default::default()
        });
        out
    }

    fn constant(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        self.graph.initializer.push(t);
        name
    }

    fn conv(
        &mut self,
        x: &Value,
        weights: &[f32],
        dims: [usize; 4],
        bias: &[f32],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Value> {
        ensure!(dims[1] == x.shape[0], "convolution over {} channels fed {}", dims[1], x.shape[0]);
        let w = self.constant(float_tensor(&format!("w{}", self.count + 1), &dims, weights));
        let b = self.constant(float_tensor(&format!("b{}", self.count + 1), &[dims[0]], bias));
        let attrs = vec![
            ints("kernel_shape", &dims[2..]),
            ints("strides", &stride),
            ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
        ];
        let name = self.node("Conv", vec![x.name.clone(), w, b], attrs);
        let rows = slide(x.shape[1], dims[2], stride[0], padding[0])?;
        let cols = slide(x.shape[2], dims[3], stride[1], padding[1])?;
        Ok(Value { name, shape: [dims[0], rows, cols] })
    }

    fn pool(
        &mut self,
        op: &str,
        x: &Value,
        window: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Value> {
        if window == [0, 0] {
            let name = self.node("GlobalAveragePool", vec![x.name.clone()], vec![]);
            return Ok(Value { name, shape: [x.shape[0], 1, 1] });
        }
        // dlib averages over the window's pixels inside the image only; with
        // padding that differs from ONNX's default, and no dlib face model uses it.
        ensure!(op == "MaxPool" || padding == [0, 0], "padded average pooling is not supported");
        let attrs = vec![
            ints("kernel_shape", &window),
            ints("strides", &stride),
            ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
        ];
        let name = self.node(op, vec![x.name.clone()], attrs);
        let rows = slide(x.shape[1], window[0], stride[0], padding[0])?;
        let cols = slide(x.shape[2], window[1], stride[1], padding[1])?;
        Ok(Value { name, shape: [x.shape[0], rows, cols] })
    }

    /// Zero-pads `x` at the end of each axis up to `shape`.
    fn pad_to(&mut self, x: &Value, shape: [usize; 3]) -> Value {
        if x.shape == shape {
            return x.clone();
        }
        let pads: Vec<i64> = [0, 0, 0, 0, 0, shape[0] - x.shape[0], shape[1] - x.shape[1], shape[2] - x.shape[2]]
            .iter()
            .map(|&v| v as i64)
            .collect();
        let t = TensorProto {
            name: format!("pads{}", self.count + 1),
            dims: vec![8],
            data_type: dtype::INT64,
            raw_data: pads.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        let p = self.constant(t);
        let name = self.node("Pad", vec![x.name.clone(), p], vec![]);
        Value { name, shape }
    }

    fn add(&mut self, a: &Value, b: &Value) -> Value {
        let shape = [0, 1, 2].map(|i| a.shape[i].max(b.shape[i]));
        let (a, b) = (self.pad_to(a, shape), self.pad_to(b, shape));
        let name = self.node("Add", vec![a.name, b.name], vec![]);
        Value { name, shape }
    }
}

/// Builds the ONNX model of `net` for a `1 x 3 x rows x cols` input that is
/// already normalised as dlib does (`(pixel - mean) / 256`, RGB planes).
pub fn to_onnx(net: &Network) -> Result<ModelProto> {
    let mut b = Builder { graph: GraphProto { name: "dlib_resnet".into(), ..Default::default() }, count: 0 };
    let mut x = Value { name: INPUT.into(), shape: [3, net.input.rows, net.input.cols] };
    let mut tags: Vec<Value> = Vec::new();
    let mut layers = net.layers.iter().peekable();
    let mut embedding = None;
    while let Some(layer) = layers.next() {
        x = match layer {
            Layer::Conv { weights, bias, stride, padding } => {
                let (mut w, mut bias) = (weights.values.clone(), bias.clone());
                if let Some(Layer::Affine { gamma, beta }) = layers.peek() {
                    ensure!(
                        gamma.len() == bias.len() && beta.len() == bias.len(),
                        "affine size differs from its convolution"
                    );
                    let per_filter = w.len() / bias.len().max(1);
                    for (f, (g, be)) in gamma.iter().zip(beta).enumerate() {
                        w[f * per_filter..(f + 1) * per_filter].iter_mut().for_each(|v| *v *= g);
                        bias[f] = bias[f] * g + be;
                    }
                    layers.next();
                }
                b.conv(&x, &w, weights.dims, &bias, *stride, *padding)?
            }
            Layer::Affine { .. } => bail!("an affine layer that does not follow a convolution is not supported"),
            Layer::Relu => {
                let name = b.node("Relu", vec![x.name.clone()], vec![]);
                Value { name, shape: x.shape }
            }
            Layer::MaxPool { window, stride, padding } => b.pool("MaxPool", &x, *window, *stride, *padding)?,
            Layer::AvgPool { window, stride, padding } => b.pool("AveragePool", &x, *window, *stride, *padding)?,
            Layer::Tag => {
                tags.push(x.clone());
                x
            }
            Layer::Skip => tags.first().cloned().context("skip without a tag")?,
            Layer::AddPrev => {
                let prev = tags.pop().context("add_prev without a tag")?;
                tags.clear();
                b.add(&x, &prev)
            }
            Layer::Fc { inputs, outputs, weights } => {
                ensure!(x.shape.iter().product::<usize>() == *inputs, "fully connected layer fed {:?}", x.shape);
                let flat = b.node("Flatten", vec![x.name.clone()], vec![]);
                let w = b.constant(float_tensor("fc_weights", &[*inputs, *outputs], weights));
                let name = b.node("MatMul", vec![flat, w], vec![]);
                embedding = Some((name.clone(), *outputs));
                Value { name, shape: [*outputs, 1, 1] }
            }
        };
    }
    let (last, dim) = embedding.context("the network has no fully connected output")?;
    // Name the output for what it is.
    if let Some(n) = b.graph.node.last_mut() {
        n.output = vec![OUTPUT.into()];
    }
    ensure!(b.graph.node.last().is_some_and(|n| n.name == last), "the descriptor is not the last node");
    b.graph.input = vec![value_info(INPUT, &[1, 3, net.input.rows, net.input.cols])];
    b.graph.output = vec![value_info(OUTPUT, &[1, dim])];
    Ok(ModelProto {
        ir_version: 7,
        producer_name: "visage (dlib reader)".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        graph: Some(b.graph),
        ..Default::default()
    })
}
