//! dlib's face-recognition ResNet (`anet_type` in dlib's
//! `examples/dnn_face_recognition_ex.cpp`) read from its serialized file.
//!
//! dlib writes a network from the outside in: the loss layer (its version and
//! details), then each wrapping layer's version number down to the input,
//! then, from the input up, each layer's details followed by its training
//! state (flags, cached tensors). Tags and skips write only a version. The
//! reader walks the same structure, so every byte is accounted for: a file
//! that does not end exactly where the structure does is refused.
use anyhow::{Context, Result, ensure};

use super::serialize::{Reader, Tensor};

/// One step of the network, from the input up.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// Convolution; `weights` is `[filters, channels, rows, cols]`.
    Conv {
        weights: Tensor,
        bias: Vec<f32>,
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// Per-channel `gamma * x + beta`.
    Affine {
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    Relu,
    MaxPool {
        window: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// A window of 0 averages over the whole plane.
    AvgPool {
        window: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// Remembers the current output (dlib's `tag1`, `tag2`).
    Tag,
    /// Continues from the block's first tag (dlib's `skip1`).
    Skip,
    /// Adds the block's last tag to the current output, zero-padding the
    /// smaller of the two where their shapes differ (dlib's `add_prev`).
    AddPrev,
    /// Fully connected without bias; `weights` is `[inputs, outputs]`, row major.
    Fc {
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
    },
}

/// What a file says about the input: per-channel means subtracted from 0..255
/// RGB (dlib then divides by 256) and the chip size.
#[derive(Debug, Clone, PartialEq)]
pub struct InputLayer {
    pub means: [f32; 3],
    pub rows: usize,
    pub cols: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub input: InputLayer,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conv,
    Affine,
    Relu,
    MaxPool,
    AvgPool,
    Tag,
    Skip,
    AddPrev,
    Fc,
}

/// `anet_type`, from the input up: a 7x7/2 convolution and a 3x3/2 max-pool,
/// then residual blocks of 32 (3), 64 (down + 3), 128 (down + 2), 256
/// (down + 2) and 256 (down) filters, a global average and a 128-output
/// fully connected layer.
fn architecture() -> Vec<Kind> {
    use Kind::*;
    // relu<add_prev1<affine<con<relu<affine<con<tag1<..>>>>>>>>
    let block = [Tag, Conv, Affine, Relu, Conv, Affine, AddPrev, Relu];
    // relu<add_prev2<avg_pool<skip1<tag2<affine<con<relu<affine<con<tag1<..>>>>>>>>>>>
    let down = [Tag, Conv, Affine, Relu, Conv, Affine, Tag, Skip, AvgPool, AddPrev, Relu];
    let mut k = vec![Conv, Affine, Relu, MaxPool];
    for (downs, blocks) in [(0, 3), (1, 3), (1, 2), (1, 2), (1, 0)] {
        for _ in 0..downs {
            k.extend(down);
        }
        for _ in 0..blocks {
            k.extend(block);
        }
    }
    k.extend([AvgPool, Fc]);
    k
}

fn product(dims: [usize; 4]) -> usize {
    dims.iter().product()
}

/// Splits a layer's parameter tensor into consecutive views of the given shapes.
fn split(params: &Tensor, shapes: &[[usize; 4]]) -> Result<Vec<Vec<f32>>> {
    let mut at = 0;
    let mut out = Vec::new();
    for &s in shapes {
        let n = product(s);
        let part = params.values.get(at..at + n).context("layer parameters shorter than their views")?;
        out.push(part.to_vec());
        at += n;
    }
    Ok(out)
}

fn window(r: &mut Reader) -> Result<([usize; 2], [usize; 2], [usize; 2])> {
    let mut v = [0usize; 6];
    for x in &mut v {
        *x = usize::try_from(r.int()?).context("negative pooling parameter")?;
    }
    Ok(([v[0], v[1]], [v[2], v[3]], [v[4], v[5]]))
}

fn layer(r: &mut Reader, kind: Kind) -> Result<Layer> {
    Ok(match kind {
        Kind::Conv => {
            let version = r.tag(&["con_4", "con_5", "con_6"])?;
            let params = r.tensor()?;
            let _filters = r.int()?;
            let (_rows, _cols) = (r.int()?, r.int()?);
            let stride = [r.int()?, r.int()?].map(|v| usize::try_from(v).unwrap_or(0));
            let padding = [r.int()?, r.int()?].map(|v| usize::try_from(v).unwrap_or(usize::MAX));
            let (w, b) = (r.alias_shape()?, r.alias_shape()?);
            for _ in 0..4 {
                r.float()?; // learning-rate and weight-decay multipliers
            }
            let use_bias = if version != "con_4" { r.bool()? } else { true };
            if version == "con_6" {
                ensure!(!r.bool()?, "convolutions with a fused ReLU are not supported");
            }
            ensure!(stride.iter().all(|&s| s > 0) && padding.iter().all(|&p| p < 16), "bad convolution geometry");
            let mut parts = split(&params, &[w, b])?.into_iter();
            let weights = Tensor { dims: w, values: parts.next().unwrap_or_default() };
            let mut bias = parts.next().unwrap_or_default();
            if !use_bias {
                bias.iter_mut().for_each(|v| *v = 0.0);
            }
            ensure!(bias.len() == w[0], "convolution bias of {} for {} filters", bias.len(), w[0]);
            Layer::Conv { weights, bias, stride, padding }
        }
        Kind::Affine => {
            let version = r.tag(&["affine_", "affine_2"])?;
            let params = r.tensor()?;
            let (g, b) = (r.alias_shape()?, r.alias_shape()?);
            let _mode = r.int()?;
            if version == "affine_2" {
                ensure!(!r.bool()?, "disabled affine layers are not supported");
            }
            let mut parts = split(&params, &[g, b])?.into_iter();
            Layer::Affine { gamma: parts.next().unwrap_or_default(), beta: parts.next().unwrap_or_default() }
        }
        Kind::Relu => {
            if r.tag(&["relu_", "relu_2"])? == "relu_2" {
                ensure!(!r.bool()?, "disabled ReLU layers are not supported");
            }
            Layer::Relu
        }
        Kind::MaxPool => {
            r.tag(&["max_pool_2"])?;
            let (window, stride, padding) = window(r)?;
            Layer::MaxPool { window, stride, padding }
        }
        Kind::AvgPool => {
            r.tag(&["avg_pool_2"])?;
            let (window, stride, padding) = window(r)?;
            Layer::AvgPool { window, stride, padding }
        }
        Kind::AddPrev => {
            r.tag(&["add_prev_"])?;
            Layer::AddPrev
        }
        Kind::Fc => {
            let version = r.tag(&["fc_2", "fc_3"])?;
            let outputs = r.size()?;
            let inputs = r.size()?;
            let params = r.tensor()?;
            let (w, _b) = (r.alias_shape()?, r.alias_shape()?);
            ensure!(r.int()? == 1, "only fully connected layers without bias are supported");
            for _ in 0..4 {
                r.float()?;
            }
            if version == "fc_3" {
                r.bool()?;
            }
            ensure!(product(w) == inputs * outputs, "fully connected weights of {} for {inputs}x{outputs}", product(w));
            let weights = split(&params, &[w])?.into_iter().next().unwrap_or_default();
            Layer::Fc { inputs, outputs, weights }
        }
        Kind::Tag => Layer::Tag,
        Kind::Skip => Layer::Skip,
    })
}

/// Skips what `add_layer` (of the given version) writes after a layer's
/// details: three flags and the cached gradient and output tensors, then the
/// parameter gradient (version 2); the first layer, on the input, writes a
/// final gradient instead and, from version 3, a sample expansion factor.
fn training_state(r: &mut Reader, version: i64, first: bool) -> Result<()> {
    for _ in 0..3 {
        r.bool()?;
    }
    r.tensor()?;
    r.tensor()?;
    if first || version >= 2 {
        r.tensor()?;
    }
    if first && version >= 3 {
        r.int()?;
    }
    Ok(())
}

/// Reads a `dlib_face_recognition_resnet_model_v1.dat`-shaped file.
pub fn read(bytes: &[u8]) -> Result<Network> {
    let mut r = Reader::new(bytes);
    ensure!(r.int()? == 1, "not a dlib network file (loss layer version)");
    if r.tag(&["loss_metric_", "loss_metric_2"])? == "loss_metric_2" {
        r.float()?; // margin
        r.float()?; // distance threshold
    }
    let kinds = architecture();
    let mut versions = Vec::with_capacity(kinds.len());
    for _ in &kinds {
        versions.push(r.int()?);
    }
    r.tag(&["input_rgb_image_sized"])?;
    let means = [r.float()? as f32, r.float()? as f32, r.float()? as f32];
    let (rows, cols) = (r.size()?, r.size()?);
    let mut layers = Vec::with_capacity(kinds.len());
    for (i, &kind) in kinds.iter().enumerate() {
        let l = layer(&mut r, kind).with_context(|| format!("layer {i} ({kind:?}) at byte {}", r.position()))?;
        if !matches!(kind, Kind::Tag | Kind::Skip) {
            // Versions were read from the outside in.
            training_state(&mut r, versions[kinds.len() - 1 - i], i == 0)?;
        }
        layers.push(l);
    }
    ensure!(r.at_end(), "{} bytes left after the network", bytes.len() - r.position());
    Ok(Network { input: InputLayer { means, rows, cols }, layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_has_29_convolutions_and_ends_in_128_outputs() {
        let k = architecture();
        assert_eq!(k.iter().filter(|&&k| k == Kind::Conv).count(), 29);
        assert_eq!(k.iter().filter(|&&k| k == Kind::AddPrev).count(), 14);
        assert_eq!(k.iter().filter(|&&k| k == Kind::Skip).count(), 4);
        assert_eq!(k.last(), Some(&Kind::Fc));
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        assert!(read(&[]).is_err());
        assert!(read(b"not a model").is_err());
        let mut bytes = super::super::serialize::tests::int(1);
        bytes.extend(super::super::serialize::tests::string("loss_multiclass_log_"));
        assert!(read(&bytes).is_err());
    }
}
