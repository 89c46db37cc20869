"""Fold the block-quantized constants of an ONNX model into float32 weights.

An independent Python version of visage's load-time rewrite
(crates/model/src/onnx_rewrite/), used only by the reference scripts: onnxruntime
and OpenCV's DNN engine both refuse the shipped files as they are (stale graph
inputs; one-element scales with `block_size`).
"""
import numpy as np
import onnx
from onnx import numpy_helper


def _dequantize(q, scale, zero, axis, block):
    q = q.astype(np.float32)
    zero = np.zeros_like(scale) if zero is None else zero.astype(np.float32)
    if scale.size == 1:
        return (q - zero.reshape(())) * scale.reshape(())
    axis = axis % q.ndim
    if block:
        scale = np.repeat(scale, block, axis=axis)
        zero = np.repeat(zero, block, axis=axis)
        idx = [slice(None)] * q.ndim
        idx[axis] = slice(0, q.shape[axis])
        scale, zero = scale[tuple(idx)], zero[tuple(idx)]
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


def fold(path, dynamic=False):
    """The folded model; with `dynamic`, free spatial input dims (for onnxruntime)."""
    m = onnx.load(path)
    g = m.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    keep = []
    for n in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "DequantizeLinear" and all(i in consts for i in n.input if i):
            zero = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            consts[n.output[0]] = _dequantize(consts[n.input[0]], consts[n.input[1]], zero,
                                              attrs.get("axis", 1), attrs.get("block_size", 0))
        elif n.op_type == "Reshape" and all(i in consts for i in n.input):
            consts[n.output[0]] = consts[n.input[0]].reshape(consts[n.input[1]])
        else:
            keep.append(n)
    used = {i for n in keep for i in n.input} | {o.name for o in g.output}
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k in used)
    inputs = [i for i in g.input if i.name in used and i.name not in consts]
    del g.input[:]
    g.input.extend(inputs)
    del g.value_info[:]
    if not dynamic:
        return m
    # Let the spatial size vary (YuNet runs at any multiple of 32).
    for i in g.input:
        dims = i.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_param, dims[3].dim_param = "height", "width"
    for o in g.output:
        o.type.tensor_type.ClearField("shape")
    return m
