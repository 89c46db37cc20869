//! Where tract spends its time in one model: the rewritten graph that the
//! service runs, optimised for one input shape as the service does (with
//! visage's kernels; `VISAGE_TRACT_KERNELS=tract` for tract's alone), timed node by node (medians
//! over the runs), summed per operator kind. A development tool for speed
//! work, not part of the service.
//!
//!     cargo run --release -p visage-model --example op_profile -- MODEL_ID HxW [RUNS] [TOP]
//!     cargo run --release -p visage-model --example op_profile -- sface-2021dec-int8bq 112x112
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval};

/// The service's allocator (see src/main.rs), so that the figures match.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let id = args.first().context("usage: op_profile MODEL_ID HxW [RUNS] [TOP]")?;
    let (h, w) = args.get(1).and_then(|s| s.split_once('x')).context("second argument: HxW")?;
    let (h, w): (usize, usize) = (h.parse()?, w.parse()?);
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let top: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(25);

    let dir = Path::new("models");
    let manifest = visage_model::Manifest::load(dir)?;
    let entry = manifest.models.iter().find(|m| &m.id == id).with_context(|| format!("no model {id:?}"))?;
    let proto = visage_model::tract_proto(dir, entry)?;
    let plan = visage_model::tract::TractNetwork::new(&proto, id)?.plan([1, 3, h, w])?;
    let input: TValue = Tensor::from(tract_ndarray::Array4::<f32>::from_elem((1, 3, h, w), 100.0)).into();

    let mut per_node: HashMap<usize, Vec<Duration>> = HashMap::new();
    let mut totals = Vec::new();
    let mut state = SimpleState::new(&plan)?;
    for run in 0..runs + 2 {
        let start = Instant::now();
        let mut times = Vec::new();
        state.run_plan_with_eval(tvec![input.clone()], |ctx, op_state, node, inputs| {
            let t = Instant::now();
            let out = eval(ctx, op_state, node, inputs);
            times.push((node.id, t.elapsed()));
            out
        })?;
        if run >= 2 {
            totals.push(start.elapsed());
            for (id, t) in times {
                per_node.entry(id).or_default().push(t);
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let total = median(&mut totals);
    let fastest = totals[0];
    let graph = plan.model();
    let mut by_kind: HashMap<String, (Duration, usize)> = HashMap::new();
    let mut nodes: Vec<(Duration, usize)> = Vec::new();
    for (id, v) in per_node.iter_mut() {
        let m = median(v);
        let kind = graph.node(*id).op().name().to_string();
        let e = by_kind.entry(kind).or_default();
        e.0 += m;
        e.1 += 1;
        nodes.push((m, *id));
    }
    println!(
        "{id} at {h}x{w}: {:.2} ms a run (median of {runs}; fastest {:.2}), {} nodes",
        ms(total),
        ms(fastest),
        graph.nodes().len()
    );
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1.0));
    println!("\n{:>8} {:>6} {:>5}  operator", "ms", "%", "nodes");
    for (kind, (t, n)) in &kinds {
        println!("{:8.3} {:6.1} {:5}  {kind}", ms(*t), 100.0 * ms(*t) / ms(total), n);
    }
    nodes.sort_by_key(|n| std::cmp::Reverse(n.0));
    println!("\nslowest nodes:");
    for (t, id) in nodes.iter().take(top) {
        let node = graph.node(*id);
        let input_fact = node.inputs.first().map(|o| format!("{:?}", graph.outlet_fact(*o).map(|f| f.shape.clone())));
        println!("{:8.3}  #{id} {} {}  in {}", ms(*t), node.op().name(), node.name, input_fact.unwrap_or_default());
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
