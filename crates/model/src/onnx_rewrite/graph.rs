//! What the passes ask of a graph: which node produces a value, which nodes
//! read it, which initializer holds it. Built once per pass, before it edits.
use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// Producers, readers and initializers of a graph, by value name.
pub struct GraphIndex {
    producer: HashMap<String, usize>,
    /// Node indices, once per input slot that reads the value.
    readers: HashMap<String, Vec<usize>>,
    initializers: HashMap<String, usize>,
    outputs: HashSet<String>,
}

impl GraphIndex {
    pub fn new(graph: &GraphProto) -> Self {
        let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for name in n.input.iter().filter(|x| !x.is_empty()) {
                readers.entry(name.clone()).or_default().push(i);
            }
        }
        Self {
            producer: graph
                .node
                .iter()
                .enumerate()
                .flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i)))
                .collect(),
            readers,
            initializers: graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect(),
            outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
        }
    }

    /// The node that writes `value`.
    pub fn producer(&self, value: &str) -> Option<usize> {
        self.producer.get(value).copied()
    }

    /// The nodes that read `value` (a node twice if it reads it twice).
    pub fn readers(&self, value: &str) -> &[usize] {
        self.readers.get(value).map_or(&[], Vec::as_slice)
    }

    pub fn is_output(&self, value: &str) -> bool {
        self.outputs.contains(value)
    }

    /// Whether node `node` is all that sees `value`: its one reader, and
    /// `value` no graph output.
    pub fn read_only_by(&self, value: &str, node: usize) -> bool {
        self.readers(value) == [node] && !self.is_output(value)
    }

    /// The index of the initializer named `name`.
    pub fn initializer(&self, name: &str) -> Option<usize> {
        self.initializers.get(name).copied()
    }

    /// An initializer read by exactly one node input (and no graph output):
    /// one that a pass may change in place.
    pub fn private_initializer(&self, name: &str) -> Option<usize> {
        self.initializer(name).filter(|_| self.readers(name).len() == 1 && !self.is_output(name))
    }

    /// Records an initializer a pass appended.
    pub fn add_initializer(&mut self, name: String, index: usize) {
        self.initializers.insert(name, index);
    }
}

/// A node with one output, named after it.
pub fn single_output_node(op: &str, inputs: Vec<String>, output: String) -> NodeProto {
    NodeProto { op_type: op.into(), name: output.clone(), input: inputs, output: vec![output], ..Default::default() }
}

/// Every name read by a node (including sub-graphs) or exposed as a graph output.
pub(crate) fn used_names(graph: &GraphProto) -> HashSet<String> {
    fn visit(g: &GraphProto, used: &mut HashSet<String>) {
        for n in &g.node {
            used.extend(n.input.iter().filter(|i| !i.is_empty()).cloned());
            for a in &n.attribute {
                if let Some(sub) = &a.g {
                    visit(sub, used);
                }
                for sub in &a.graphs {
                    visit(sub, used);
                }
            }
        }
        used.extend(g.output.iter().map(|o| o.name.clone()));
    }
    let mut used = HashSet::new();
    visit(graph, &mut used);
    used
}

/// Drops initializers and graph inputs that nothing reads.
pub fn drop_unused(graph: &mut GraphProto) -> (usize, usize) {
    let used = used_names(graph);
    let (i0, n0) = (graph.initializer.len(), graph.input.len());
    graph.initializer.retain(|t| used.contains(&t.name));
    graph.input.retain(|i| used.contains(&i.name));
    (i0 - graph.initializer.len(), n0 - graph.input.len())
}

pub fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a: &&AttributeProto| a.name == name).map(|a| a.i)
}

pub fn dims_usize(t: &TensorProto) -> Result<Vec<usize>> {
    t.dims.iter().map(|&d| usize::try_from(d).with_context(|| format!("negative dimension in {}", t.name))).collect()
}
