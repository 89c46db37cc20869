//! Reading and writing the tensors the passes touch: inline int8, uint8,
//! int32, int64 and f32 data (raw bytes or typed fields).
use anyhow::{Result, bail, ensure};
use tract_onnx::pb::TensorProto;

use super::dtype;

fn check_inline(t: &TensorProto) -> Result<()> {
    ensure!(
        t.external_data.is_empty() && t.data_location.unwrap_or(0) == 0,
        "tensor {} uses external data, which is not supported",
        t.name
    );
    Ok(())
}

/// The values of an integer tensor (int8, uint8, int32) widened to i32.
pub fn int_values(t: &TensorProto) -> Result<Vec<i32>> {
    check_inline(t)?;
    let raw = &t.raw_data;
    Ok(match t.data_type {
        dtype::INT8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as i32).collect(),
        dtype::UINT8 if !raw.is_empty() => raw.iter().map(|&b| b as i32).collect(),
        dtype::INT32 if !raw.is_empty() => {
            raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        dtype::INT8 | dtype::UINT8 | dtype::INT32 => t.int32_data.clone(),
        other => bail!("tensor {} has type {other}, expected an 8- or 32-bit integer", t.name),
    })
}

/// The values of a float tensor.
pub fn float_values(t: &TensorProto) -> Result<Vec<f32>> {
    check_inline(t)?;
    ensure!(t.data_type == dtype::FLOAT, "tensor {} is not float32", t.name);
    Ok(if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    })
}

/// The values of an int64 tensor (shapes).
pub fn i64_values(t: &TensorProto) -> Result<Vec<i64>> {
    check_inline(t)?;
    ensure!(t.data_type == dtype::INT64, "tensor {} is not int64", t.name);
    Ok(if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        t.raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    })
}

/// A float32 tensor with its values stored as little-endian raw data.
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dtype::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}
