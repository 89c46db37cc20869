//! The passes on small graphs, run in tract before and after.
use super::test_graph::*;
use super::*;
use tract_onnx::pb::GraphProto;

#[test]
fn blocked_dequantize_repeats_scale_and_zero_point_along_axis() {
    // 2x5, blocks of 2 along axis 1: blocks [0,1] [2,3] [4] (partial)
    let q = [1, 2, 3, 4, 5, -1, -2, -3, -4, -5];
    let scale = [1.0, 10.0, 100.0, 0.5, 0.25, 2.0];
    let zero = [0, 1, 2, 0, -1, 1];
    let out = dequantize(&q, &[2, 5], &scale, &[2, 3], &zero, 1, 2).unwrap();
    let expected = [
        1.0, 2.0, 20.0, 30.0, 300.0, // row 0
        -0.5, -1.0, -0.5, -0.75, -12.0, // row 1
    ];
    assert_eq!(out, expected);
}

#[test]
fn blocked_dequantize_along_axis_zero_with_single_scale_block() {
    // A 1-D tensor of 3 with block 64: one block, one scale.
    let out = dequantize(&[3, -3, 0], &[3], &[0.5], &[1], &[1], 0, 64).unwrap();
    assert_eq!(out, [1.0, -2.0, -0.5]);
    // Two blocks of 2 along axis 0 of a 3x2 tensor (inner stride 2).
    let out = dequantize(&[1, 2, 3, 4, 5, 6], &[3, 2], &[1.0, 2.0, 3.0, 4.0], &[2, 2], &[0; 4], 0, 2).unwrap();
    assert_eq!(out, [1.0, 4.0, 3.0, 8.0, 15.0, 24.0]);
}

#[test]
fn per_axis_and_per_tensor_dequantize() {
    let out = dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 3.0], &[2], &[0, 1], 0, 0).unwrap();
    assert_eq!(out, [1.0, 2.0, 6.0, 9.0]);
    let out = dequantize(&[1, 2], &[2], &[2.0], &[], &[1], 1, 0).unwrap();
    assert_eq!(out, [0.0, 2.0]);
}

#[test]
fn dequantize_rejects_mismatched_scale_shape() {
    assert!(dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0, 1.0], &[3, 1], &[0; 3], 1, 2).is_err());
}

/// x [1,4] · W, with W a blocked-int8 constant [4,2] stored as [8] and reshaped.
fn tiny_quantized_model() -> ModelProto {
    let q: Vec<u8> = [1i8, -2, 3, 4, -5, 6, 7, -8].iter().map(|&v| v as u8).collect();
    let scale: Vec<u8> = [0.5f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let zero: Vec<u8> = vec![1, 0];
    let shape: Vec<u8> = [4i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let graph = GraphProto {
        node: vec![
            node("DequantizeLinear", &["wq", "ws", "wz"], "wf", vec![attr("axis", 0), attr("block_size", 4)]),
            node("Reshape", &["wf", "wshape"], "w", vec![]),
            node("MatMul", &["x", "w"], "y", vec![]),
        ],
        initializer: vec![
            tensor("wq", &[8], dtype::INT8, q),
            tensor("ws", &[2], dtype::FLOAT, scale),
            tensor("wz", &[2], dtype::INT8, zero),
            tensor("wshape", &[2], dtype::INT64, shape),
        ],
        input: vec![value("x", &[1, 4]), value("stale_weight", &[3, 3])],
        output: vec![value("y", &[1, 2])],
        ..Default::default()
    };
    opset21(graph)
}

#[test]
fn a_folded_model_runs_in_tract_with_the_dequantized_weights() {
    use tract_onnx::prelude::*;
    let mut model = tiny_quantized_model();
    let report = fold_constants(&mut model).unwrap();
    assert_eq!(
        report,
        // wq, ws, wz, wshape and the intermediate wf are no longer read.
        RewriteReport { dequantize_folded: 1, reshape_folded: 1, inputs_dropped: 1, initializers_dropped: 5 }
    );
    // W = [(1-1)*.5, (-2-1)*.5, (3-1)*.5, (4-1)*.5, -5*2, 6*2, 7*2, -8*2] as 4x2
    let w = [0.0f32, -1.5, 1.0, 1.5, -10.0, 12.0, 14.0, -16.0];
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let expected: Vec<f32> = (0..2).map(|j| (0..4).map(|i| x[i] * w[i * 2 + j]).sum()).collect();
    let plan =
        tract_onnx::onnx().model_for_proto_model(&model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let out = plan.run(tvec![tract_ndarray::arr2(&[x]).into_tensor().into()]).unwrap();
    let got = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
    assert_eq!(got, expected);
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// x [1,2,3,3] -> Conv 1x1 (no bias) -> BatchNormalization -> PRelu -> y
fn conv_bn_prelu_model() -> ModelProto {
    let mut eps = attr("epsilon", 0);
    eps.r#type = 1;
    eps.f = 1e-3;
    let graph = GraphProto {
        node: vec![
            node("Conv", &["x", "w"], "c", vec![]),
            node("BatchNormalization", &["c", "gamma", "beta", "mean", "var"], "b", vec![eps]),
            node("PRelu", &["b", "slope"], "y", vec![]),
        ],
        initializer: vec![
            tensor("w", &[2, 2, 1, 1], dtype::FLOAT, f32s(&[0.5, -1.0, 2.0, 0.25])),
            tensor("gamma", &[2], dtype::FLOAT, f32s(&[1.5, 0.5])),
            tensor("beta", &[2], dtype::FLOAT, f32s(&[-0.2, 0.3])),
            tensor("mean", &[2], dtype::FLOAT, f32s(&[0.1, -0.4])),
            tensor("var", &[2], dtype::FLOAT, f32s(&[2.0, 0.5])),
            tensor("slope", &[2, 1, 1], dtype::FLOAT, f32s(&[0.25, -0.1])),
        ],
        input: vec![value("x", &[1, 2, 3, 3])],
        output: vec![value("y", &[1, 2, 3, 3])],
        ..Default::default()
    };
    opset21(graph)
}

fn run(model: &ModelProto, x: &[f32]) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let plan =
        tract_onnx::onnx().model_for_proto_model(model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let input = tract_ndarray::Array4::from_shape_vec((1, 2, 3, 3), x.to_vec()).unwrap().into_tensor();
    let out = plan.run(tvec![input.into()]).unwrap();
    out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
}

/// 18 values for a [1, 2, 3, 3] input, negative and positive.
fn sample_input() -> Vec<f32> {
    (0..18).map(|i| (i as f32 - 9.0) * 0.37).collect()
}

fn op_types(model: &ModelProto) -> Vec<&str> {
    model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect()
}

#[test]
fn batchnorm_folding_and_prelu_rewrite_keep_the_outputs() {
    let original = conv_bn_prelu_model();
    let x = sample_input();
    let expected = run(&original, &x);
    let mut rewritten = original.clone();
    assert_eq!(fold_batchnorm_into_conv(&mut rewritten).unwrap(), 1);
    assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 1);
    assert_eq!(op_types(&rewritten), ["Conv", "Mul", "Max"]);
    let got = run(&rewritten, &x);
    // Negative inputs exercise both slopes; positive pass straight through.
    assert!(expected.iter().any(|v| *v < 0.0) && expected.iter().any(|v| *v > 0.0));
    for (a, b) in got.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
}

#[test]
fn prelu_with_a_slope_above_one_uses_the_general_form() {
    let mut original = conv_bn_prelu_model();
    let g = original.graph.as_mut().unwrap();
    let slope = g.initializer.iter_mut().find(|t| t.name == "slope").unwrap();
    slope.raw_data = f32s(&[1.5, -0.1]);
    let x = sample_input();
    let expected = run(&original, &x);
    let mut rewritten = original.clone();
    assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 1);
    assert_eq!(op_types(&rewritten), ["Conv", "BatchNormalization", "Relu", "Min", "Mul", "Add"]);
    for (a, b) in run(&rewritten, &x).iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5);
    }
}

/// x [1,2,3,3] -> Conv 1x1 (bias) -> PRelu (slopes 0.25 and 2.5) -> Conv 3x3
/// (pad 1) and a depthwise Conv 1x1 -> Add -> y
fn conv_prelu_conv_model() -> ModelProto {
    let mut pads = attr("pads", 0);
    pads.r#type = 7;
    pads.ints = vec![1, 1, 1, 1];
    let graph = GraphProto {
        node: vec![
            node("Conv", &["x", "w1", "b1"], "c", vec![]),
            node("PRelu", &["c", "slope"], "p", vec![]),
            node("Conv", &["p", "w2"], "d", vec![pads]),
            node("Conv", &["p", "w3"], "e", vec![attr("group", 2)]),
            node("Add", &["d", "e"], "y", vec![]),
        ],
        initializer: vec![
            tensor("w1", &[2, 2, 1, 1], dtype::FLOAT, f32s(&[0.5, -1.0, 2.0, 0.25])),
            tensor("b1", &[2], dtype::FLOAT, f32s(&[0.1, -0.3])),
            tensor("slope", &[2, 1, 1], dtype::FLOAT, f32s(&[0.25, 2.5])),
            tensor(
                "w2",
                &[2, 2, 3, 3],
                dtype::FLOAT,
                f32s(&(0..36).map(|i| (i as f32 * 0.7).sin()).collect::<Vec<_>>()),
            ),
            tensor("w3", &[2, 1, 1, 1], dtype::FLOAT, f32s(&[1.5, -0.75])),
        ],
        input: vec![value("x", &[1, 2, 3, 3])],
        output: vec![value("y", &[1, 2, 3, 3])],
        ..Default::default()
    };
    opset21(graph)
}

#[test]
fn prelu_sign_folding_keeps_the_outputs() {
    let original = conv_prelu_conv_model();
    let x = sample_input();
    let expected = run(&original, &x);
    let mut rewritten = original.clone();
    assert_eq!(fold_prelu_signs(&mut rewritten).unwrap(), 1);
    assert_eq!(rewrite_prelu(&mut rewritten).unwrap(), 0);
    assert_eq!(op_types(&rewritten), ["Conv", "Mul", "Max", "Conv", "Conv", "Add"]);
    let got = run(&rewritten, &x);
    for (a, b) in got.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-4, "{got:?} vs {expected:?}");
    }
    // The scale multiply as a depthwise convolution gives the same outputs.
    assert_eq!(channel_muls_to_depthwise(&mut rewritten).unwrap(), 1);
    assert_eq!(op_types(&rewritten), ["Conv", "Conv", "Max", "Conv", "Conv", "Add"]);
    for (a, b) in run(&rewritten, &x).iter().zip(&expected) {
        assert!((a - b).abs() < 1e-4);
    }
    // Not applicable when the PRelu output is also read by something else.
    let mut shared = original.clone();
    shared.graph.as_mut().unwrap().output.push(value("p", &[1, 2, 3, 3]));
    assert_eq!(fold_prelu_signs(&mut shared).unwrap(), 0);
}

#[test]
fn batchnorm_is_not_folded_when_the_conv_output_has_other_readers() {
    let mut model = conv_bn_prelu_model();
    let g = model.graph.as_mut().unwrap();
    g.output.push(value("c", &[1, 2, 3, 3]));
    assert_eq!(fold_batchnorm_into_conv(&mut model).unwrap(), 0);
}

#[test]
fn reshape_handles_zero_and_minus_one() {
    assert_eq!(reshaped_dims(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
    assert_eq!(reshaped_dims(&[24], &[4, 3, 2, 1], false).unwrap(), vec![4, 3, 2, 1]);
    assert!(reshaped_dims(&[24], &[5, -1], false).is_err());
    assert!(reshaped_dims(&[24], &[-1, -1], false).is_err());
}
