//! The tract backend: the graph is kept un-optimised and a plan is optimised
//! for each concrete input shape, with visage's own kernels
//! (`model::kernels`) put in before tract's code generation.
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use anyhow::{Context, Result, ensure};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::network::{Backend, Network};

/// The most optimised plans kept at once (one per input shape).
const PLAN_CACHE: usize = 48;

type Plan = Arc<TypedRunnableModel>;

/// tract: the graph is kept un-optimised and a plan is optimised for each
/// concrete input shape (symbolic shapes run 2-17x slower in tract).
pub struct TractNetwork {
    name: String,
    model: InferenceModel,
    plans: Mutex<HashMap<[usize; 4], Plan>>,
    /// visage's own kernels in place of tract's where they apply
    /// ([`super::kernels`]); off only to measure them against tract's.
    own_kernels: bool,
}

/// Types, declutters and optimises a model for one input shape, with
/// visage's own kernels put in before tract's code generation.
fn optimise(model: InferenceModel, own_kernels: bool) -> Result<TypedModel> {
    let mut typed = model.into_typed()?.into_decluttered()?;
    if own_kernels {
        let fused = super::kernels::fuse(&mut typed)?;
        tracing::debug!(?fused, "visage kernels");
    }
    typed.optimize()?;
    Ok(typed)
}

impl TractNetwork {
    pub fn new(proto: &ModelProto, name: &str) -> Result<Self> {
        // The files declare fixed shapes (640x640 for YuNet) on their outputs
        // and intermediate values; the detector runs at other sizes, so only
        // the input fact set per plan is trusted.
        let mut onnx = tract_onnx::onnx();
        super::kernels::register(&mut onnx.op_register);
        let model = onnx
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_proto_model(proto)
            .with_context(|| format!("tract cannot load {name}"))?;
        let own_kernels = super::kernels::enabled();
        Ok(Self { name: name.to_string(), model, plans: Mutex::new(HashMap::new()), own_kernels })
    }

    /// The optimised plan for `shape`, built on first use.
    pub fn plan(&self, shape: [usize; 4]) -> Result<Plan> {
        if let Some(p) = self.plans.lock().get(&shape) {
            return Ok(p.clone());
        }
        let mut model = self.model.clone();
        model.set_input_fact(0, f32::fact(shape).into())?;
        let plan = optimise(model, self.own_kernels)
            .with_context(|| format!("optimising {} for input {shape:?}", self.name))?
            .into_runnable()?;
        let mut plans = self.plans.lock();
        if plans.len() >= PLAN_CACHE {
            // Sizes are few in practice; dropping an arbitrary one bounds memory.
            if let Some(k) = plans.keys().next().copied() {
                plans.remove(&k);
            }
        }
        Ok(plans.entry(shape).or_insert(plan).clone())
    }
}

impl Network for TractNetwork {
    fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<Vec<f32>>> {
        ensure!(input.len() == shape.iter().product::<usize>(), "input of {} values for shape {shape:?}", input.len());
        let plan = self.plan(shape)?;
        let tensor = tract_ndarray::Array4::from_shape_vec(shape, input)?.into_tensor();
        let outputs = plan.run(tvec![tensor.into()])?;
        outputs.iter().map(|t| Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())).collect()
    }

    fn prepare(&self, shape: [usize; 4]) -> Result<()> {
        self.plan(shape).map(drop)
    }

    fn backend(&self) -> Backend {
        Backend::Tract
    }

    fn prefers_square_portrait(&self) -> bool {
        // visage's kernels run YuNet in time proportional to the area
        // (op_profile, HxW: 640x512 26-31 ms, 640x640 36-43 ms; tract's own
        // 107-119 and 57-76 ms).
        !self.own_kernels
    }
}
