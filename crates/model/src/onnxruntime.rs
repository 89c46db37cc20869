//! The optional ONNX Runtime backend (cargo feature `onnxruntime`): the
//! library is loaded at run time from a path (`make onnxruntime` extracts it
//! from the `onnxruntime` Python wheel), so nothing is linked at build time.
//!
//! A session is single-threaded (one intra-op thread, like a tract plan);
//! concurrency comes from the engine's workers, each taking a session from a
//! small pool that grows to the number of threads that run at once.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;

use anyhow::{Context, Result, anyhow, ensure};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use prost::Message;
use tract_onnx::pb::ModelProto;

use super::network::{Backend, Network};
use super::onnx_rewrite;

/// The process-wide ONNX Runtime environment and the library it came from.
static RUNTIME: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> = OnceLock::new();

fn environment(lib: &Path) -> Result<ort::environment::Environment> {
    ensure!(
        lib.is_file(),
        "the ONNX Runtime library {} is missing: run `make onnxruntime` to fetch it, or set \
         VISAGE_ONNXRUNTIME_LIBRARY",
        lib.display()
    );
    let loaded = RUNTIME.get_or_init(|| {
        let lib = lib.to_path_buf();
        let builder = ort::init_from(&lib).map_err(|e| format!("cannot load {}: {e}", lib.display()))?;
        let env = builder.with_name("visage").build().map_err(|e| format!("ONNX Runtime: {e}"))?;
        Ok((lib, env))
    });
    match loaded {
        Ok((loaded, env)) => {
            ensure!(loaded == lib, "ONNX Runtime is already loaded from {}, not {}", loaded.display(), lib.display());
            Ok(env.clone())
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

fn load_err<T, R>(r: Result<T, ort::Error<R>>, name: &str) -> Result<T> {
    r.map_err(|e| anyhow!("ONNX Runtime cannot load {name}: {e}"))
}

pub struct OrtNetwork {
    name: String,
    env: ort::environment::Environment,
    /// The model as ONNX Runtime takes it, kept to open more sessions.
    bytes: Vec<u8>,
    outputs: usize,
    idle: Mutex<Vec<Session>>,
}

impl OrtNetwork {
    pub fn new(proto: &ModelProto, name: &str, lib: &Path) -> Result<Self> {
        let env = environment(lib)?;
        let mut proto = proto.clone();
        onnx_rewrite::free_input_shape(&mut proto)?;
        let outputs = proto.graph.as_ref().map_or(0, |g| g.output.len());
        let net =
            Self { name: name.to_string(), env, bytes: proto.encode_to_vec(), outputs, idle: Mutex::new(Vec::new()) };
        let first = net.open()?;
        net.idle.lock().push(first);
        Ok(net)
    }

    fn open(&self) -> Result<Session> {
        let name = &self.name;
        let builder = load_err(Session::builder(&self.env), name)?;
        let builder = load_err(builder.with_optimization_level(GraphOptimizationLevel::All), name)?;
        let builder = load_err(builder.with_intra_threads(1), name)?;
        let mut builder = load_err(builder.with_inter_threads(1), name)?;
        load_err(builder.commit_from_memory(&self.bytes), name)
    }

    fn run_on(&self, session: &mut Session, input: &[f32], shape: [usize; 4]) -> Result<Vec<Vec<f32>>> {
        let err = |e: ort::Error| anyhow!("ONNX Runtime failed on {}: {e}", self.name);
        let tensor = TensorRef::from_array_view((shape, input)).map_err(err)?;
        let outputs = session.run([tensor.into()]).map_err(err)?;
        ensure!(
            outputs.len() == self.outputs,
            "{} returned {} outputs, expected {}",
            self.name,
            outputs.len(),
            self.outputs
        );
        (0..outputs.len()).map(|i| Ok(outputs[i].try_extract_tensor::<f32>().map_err(err)?.1.to_vec())).collect()
    }
}

impl Network for OrtNetwork {
    fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<Vec<f32>>> {
        ensure!(input.len() == shape.iter().product::<usize>(), "input of {} values for shape {shape:?}", input.len());
        let taken = self.idle.lock().pop();
        let mut session = match taken {
            Some(s) => s,
            None => self.open().context("opening another session")?,
        };
        let out = self.run_on(&mut session, &input, shape);
        self.idle.lock().push(session);
        out
    }

    fn prepare(&self, _shape: [usize; 4]) -> Result<()> {
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Onnxruntime
    }
}
