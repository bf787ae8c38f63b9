//! The compiled model: a validated `thrml-model/1` file with its library nodes, factors,
//! blocks and sampling program.
//!
//! A model file is JSON (the full contract is in `docs/model-format.md`):
//!
//! ```json
//! {
//!   "format": "thrml-model/1",
//!   "kinds": { "s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3} },
//!   "nodes": ["s", "s", "c", "c"],
//!   "factors": [
//!     {"type": "ising", "nodes": [0, 1], "biases": [0.1, -0.2], "edges": [[0, 1]], "weights": [0.5], "beta": 1.0},
//!     {"type": "categorical", "groups": [[2], [3]], "weights": {"shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]}}
//!   ],
//!   "free_blocks": "auto"
//! }
//! ```
//!
//! Reading happens in two steps, so that code can also build models without JSON:
//!
//! 1. [`ModelFile::from_str`] / [`ModelFile::from_path`] parse the text into plain data
//!    ([`ModelFile`]), checking syntax and field types;
//! 2. [`Model::new`] validates the meaning (node ids, kinds, tensor shapes, blocks, clamped
//!    values) and compiles the factors, blocks and sampling program.
//!
//! Every error is an [`Error::Model`] naming the file, the JSON path of the field
//! (`factors[2].weights`) and, where one is involved, the node id.
//!
//! Node ids in the file are the indices into `nodes`. The library's [`Node`]s have
//! process-unique ids of their own; [`Model::node`] and [`Model::node_id`] translate.
//!
//! # Example
//!
//! ```
//! use thrml::io::Model;
//! use thrml::SamplingSchedule;
//!
//! let model = Model::from_str(
//!     r#"{
//!         "format": "thrml-model/1",
//!         "kinds": {"s": {"type": "spin"}},
//!         "nodes": ["s", "s", "s"],
//!         "factors": [{"type": "ising", "nodes": [0, 1, 2], "biases": [0.1, 0.0, -0.1],
//!                      "edges": [[0, 1], [1, 2]], "weights": [0.5, 0.5]}],
//!         "free_blocks": "auto"
//!     }"#,
//!     "chain.json",
//! )?;
//! // A path is bipartite: two superblocks, {0, 2} and {1}.
//! assert_eq!(model.free_superblocks(), &[vec![vec![1]], vec![vec![0, 2]]]);
//! let samples = model.sample(7, 4, &SamplingSchedule::new(10, 5, 2)?)?;
//! assert_eq!(samples.kinds[0].states.shape(), &[4, 5, 3]);
//! # Ok::<(), thrml::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::exact::{DiscreteVar, ExactDistribution};
use crate::factor::FactorSamplingProgram;
use crate::graph::{Adjacency, colour_classes, dsatur_colouring};
use crate::io::json::{Reader, index, join};
use crate::io::model_file::{
    FactorSpec, FreeBlocksSpec, KindSpec, MAX_CATEGORIES, ModelFile, SuperBlockSpec, TensorSpec,
};
use crate::io::samples::{KindSamples, Samples};
use crate::models::continuous::{
    CouplingFactor, LinearFactor, QuadraticFactor, SpinContinuousFactor,
};
use crate::models::discrete::{
    CategoricalEBMFactor, DiscreteEBMFactor, SpinEBMFactor, SquareCategoricalEBMFactor,
    SquareDiscreteEBMFactor,
};
use crate::models::ebm::{AbstractEBM, EBMFactor, FactorizedEBM};
use crate::pgm::{Node, NodeKind, default_node_shape_dtypes};
use crate::program::{BlockGibbsSpec, SuperBlock};
use crate::rng::Key;
use crate::run::SamplingSchedule;
use crate::state::{State, Tensor};

/// The most state values [`Model::sample`] will hold in memory (`chains × samples × free
/// nodes`): 2³⁶ bytes.
pub const MAX_SAMPLE_VALUES: usize = 1 << 36;

/// Key derivation: the initial states come from `Key::new(seed).fold_in(INIT_STREAM)`.
const INIT_STREAM: u64 = 0;
/// Key derivation: the sampling run uses `Key::new(seed).fold_in(RUN_STREAM)`.
const RUN_STREAM: u64 = 1;

/// A node kind of a compiled [`Model`]: its name, type and nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelKind {
    name: String,
    spec: KindSpec,
    nodes: Vec<usize>,
}

impl ModelKind {
    /// The kind's name in the file.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind's type.
    #[must_use]
    pub fn spec(&self) -> KindSpec {
        self.spec
    }

    /// The ids of its nodes, ascending.
    #[must_use]
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }
}

/// A validated, compiled model: library nodes, factors, blocks and the sampling program.
///
/// Build it with [`Model::from_path`], [`Model::from_str`] or [`Model::new`].
#[derive(Debug)]
pub struct Model {
    source: PathBuf,
    file: ModelFile,
    kinds: Vec<ModelKind>,
    node_kinds: Vec<usize>,
    nodes: Vec<Node>,
    ids: HashMap<Node, usize>,
    factors: Vec<Arc<dyn EBMFactor>>,
    free: Vec<Vec<Vec<usize>>>,
    clamped: Vec<Vec<usize>>,
    clamped_values: Vec<Vec<usize>>,
    program: FactorSamplingProgram,
}

/// Which node types a group accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Spin,
    Categorical,
    Continuous,
}

/// Validation state shared by the checks of [`Model::new`].
struct Validator<'a> {
    r: Reader<'a>,
    file: &'a ModelFile,
    kinds: Vec<ModelKind>,
    node_kinds: Vec<usize>,
    nodes: Vec<Node>,
}

impl Validator<'_> {
    fn kind_of(&self, id: usize) -> &ModelKind {
        &self.kinds[self.node_kinds[id]]
    }

    fn node_label(&self, id: usize) -> String {
        format!("node {id} (kind `{}`)", self.kind_of(id).name)
    }

    /// Check that `id` exists (and has the wanted type).
    fn check_node(&self, id: usize, path: &str, want: Option<Want>) -> Result<()> {
        let n = self.node_kinds.len();
        if id >= n {
            return Err(self.r.err(
                path,
                format!(
                    "node id {id} is out of range; the model has {n} nodes (ids 0 to {})",
                    n - 1
                ),
            ));
        }
        let kind = self.kind_of(id);
        let ok = matches!(
            (want, kind.spec),
            (None, _)
                | (Some(Want::Spin), KindSpec::Spin)
                | (Some(Want::Categorical), KindSpec::Categorical { .. })
                | (Some(Want::Continuous), KindSpec::Continuous)
        );
        if !ok {
            let wanted = match want {
                Some(Want::Spin) => "spin",
                Some(Want::Categorical) => "categorical",
                _ => "continuous",
            };
            return Err(self.r.err(
                path,
                format!(
                    "{} is {}, but this group needs {wanted} nodes",
                    self.node_label(id),
                    kind.spec.type_name()
                ),
            ));
        }
        Ok(())
    }

    /// Check factor node groups: ids, types, equal lengths, no node twice in an instance.
    /// `groups` pairs each group with its path and wanted type. Returns the batch size.
    fn check_groups(
        &self,
        factor_path: &str,
        groups: &[(String, &[usize], Want)],
    ) -> Result<usize> {
        let Some((first_path, first, _)) = groups.first() else {
            return Err(self
                .r
                .err(factor_path, "a factor needs at least one node group"));
        };
        for (path, group, want) in groups {
            if group.len() != first.len() {
                return Err(self.r.err(
                    path,
                    format!(
                        "has {} but {first_path} has {}; all groups of a factor have the same length",
                        count(group.len(), "node", "nodes"),
                        first.len()
                    ),
                ));
            }
            for (j, &id) in group.iter().enumerate() {
                self.check_node(id, &index(path, j), Some(*want))?;
            }
        }
        for b in 0..first.len() {
            for (k, (path_k, group_k, _)) in groups.iter().enumerate() {
                for (path_l, group_l, _) in &groups[..k] {
                    if group_k[b] == group_l[b] {
                        return Err(self.r.err(
                            &index(path_k, b),
                            format!(
                                "{} is also {}; a node may appear only once in a factor instance",
                                self.node_label(group_k[b]),
                                index(path_l, b)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(first.len())
    }

    /// Check the category axes of `weights` (`[B, K_0, …]`) against the categorical groups.
    fn check_category_axes(
        &self,
        weights_path: &str,
        weights: &TensorSpec,
        batch: usize,
        categorical: &[(String, &[usize])],
        square: bool,
    ) -> Result<()> {
        let rank = 1 + categorical.len();
        let mut expected = vec![batch];
        for (path, group) in categorical {
            // Every node of a group indexes the same axis, so they must agree on K.
            let mut k = None;
            for (j, &id) in group.iter().enumerate() {
                let kj = self.kind_of(id).spec.n_values();
                match k {
                    None => k = Some((kj, id)),
                    Some((k0, id0)) if k0 != kj => {
                        return Err(self.r.err(
                            &index(path, j),
                            format!(
                                "{} has {kj} categories but node {id0} in the same group has {k0}; \
                                 every node of a group indexes one weight axis",
                                self.node_label(id)
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            // An empty group pins no length; take the file's.
            let axis = expected.len();
            expected
                .push(k.map_or_else(|| weights.shape.get(axis).copied().unwrap_or(1), |(k, _)| k));
        }
        if weights.shape.len() != rank || weights.shape != expected {
            let desc = if categorical.is_empty() {
                "[B]".to_owned()
            } else {
                format!(
                    "[B, {}]",
                    categorical
                        .iter()
                        .map(|(p, _)| format!("categories of {p}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(self.r.err(
                weights_path,
                format!(
                    "has shape {:?}, expected {expected:?} ({desc}, B = {batch} factor instances)",
                    weights.shape
                ),
            ));
        }
        if square
            && weights.shape.len() > 2
            && weights.shape[2..].iter().any(|&k| k != weights.shape[1])
        {
            return Err(self.r.err(
                weights_path,
                format!(
                    "has shape {:?}, but a square factor needs every category axis to have the same length",
                    weights.shape
                ),
            ));
        }
        Ok(())
    }

    fn block(&self, ids: &[usize], kind: NodeKind) -> Result<Block> {
        Block::of_kind(kind, ids.iter().map(|&i| self.nodes[i]).collect())
    }
}

/// `n` and the noun, singular or plural: "1 entry", "2 entries".
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `values · scale` as `f32`, rejecting values outside the `f32` range.
fn to_f32(r: &Reader<'_>, path: &str, values: &[f64], scale: f64) -> Result<Vec<f32>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = v * scale;
            if x.is_finite() && x.abs() <= f64::from(f32::MAX) {
                #[allow(clippy::cast_possible_truncation)]
                Ok(x as f32)
            } else {
                let what = if scale == 1.0 {
                    format!("entry {i} is {v:e}")
                } else {
                    format!("entry {i} is {v:e}, times beta {scale} is {x:e}")
                };
                Err(r.err(
                    path,
                    format!("{what}, outside the range of 32-bit float weights (±3.4e38)"),
                ))
            }
        })
        .collect()
}

fn tensor_f32(r: &Reader<'_>, path: &str, t: &TensorSpec) -> Result<ArrayD<f32>> {
    let data = to_f32(r, path, &t.data, 1.0)?;
    ArrayD::from_shape_vec(IxDyn(&t.shape), data).map_err(|e| r.err(path, e.to_string()))
}

impl Model {
    /// Read, parse, validate and compile a model file.
    ///
    /// # Errors
    /// As [`ModelFile::from_path`] and [`Model::new`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        Model::new(ModelFile::from_path(path)?, path)
    }

    /// Parse, validate and compile model JSON; `source` names the file in errors.
    ///
    /// # Errors
    /// As [`ModelFile::from_str`] and [`Model::new`].
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, source: impl AsRef<Path>) -> Result<Model> {
        let source = source.as_ref();
        Model::new(ModelFile::from_str(text, source)?, source)
    }

    /// Validate and compile a parsed model file; `source` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Model`] naming the field and node for: unknown kinds, bad kind names or
    /// category counts, node ids out of range, nodes of the wrong type in a group, a node
    /// twice in one factor instance, groups of different lengths, weight tensors of the
    /// wrong shape or with values outside the `f32` range, blocks that are empty, mix kinds,
    /// repeat a node or hold interacting nodes, free blocks that miss a node, and clamped
    /// values of the wrong count or out of range.
    pub fn new(file: ModelFile, source: impl AsRef<Path>) -> Result<Model> {
        let source = source.as_ref().to_path_buf();
        let v = Validator::new(Reader::new(&source), &file)?;
        let (factors, cliques) = v.factors()?;
        let (clamped_in, clamped_values) = v.clamped()?;
        let free: Vec<Vec<Vec<usize>>> = match &v.file.free_blocks {
            FreeBlocksSpec::Auto => v.auto_blocks(&clamped_in, &cliques)?,
            FreeBlocksSpec::Explicit(superblocks) => {
                v.explicit_blocks(superblocks, &clamped_in, &cliques)?
            }
        };

        let Validator {
            r,
            kinds,
            node_kinds,
            nodes,
            ..
        } = v;
        let ids = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let program = compile_program(
            &kinds,
            &node_kinds,
            &nodes,
            &factors,
            &free,
            &file.clamped_blocks,
        )
        .map_err(|e| translate_library_error(&r, e, &ids))?;
        Ok(Model {
            clamped: file.clamped_blocks.clone(),
            source,
            file,
            kinds,
            node_kinds,
            nodes,
            ids,
            factors,
            free,
            clamped_values,
            program,
        })
    }
}

impl<'a> Validator<'a> {
    /// Check kinds and nodes, and create the library nodes.
    fn new(r: Reader<'a>, file: &'a ModelFile) -> Result<Validator<'a>> {
        // Kinds.
        let mut kinds = Vec::new();
        let mut kind_index = HashMap::new();
        for (name, &spec) in &file.kinds {
            let path = join("kinds", name);
            if name.is_empty()
                || name.len() > 128
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(r.err(
                    &path,
                    format!(
                        "kind name {name:?} is not allowed; use 1 to 128 ASCII letters, digits, '_' or '-'"
                    ),
                ));
            }
            if let KindSpec::Categorical { categories } = spec
                && !(1..=MAX_CATEGORIES).contains(&categories)
            {
                return Err(r.err(
                    &join(&path, "categories"),
                    format!(
                        "{categories} categories; a categorical kind has 1 to {MAX_CATEGORIES}"
                    ),
                ));
            }
            kind_index.insert(name.as_str(), kinds.len());
            kinds.push(ModelKind {
                name: name.clone(),
                spec,
                nodes: Vec::new(),
            });
        }

        // Nodes.
        if file.nodes.is_empty() {
            return Err(r.err("nodes", "a model needs at least one node"));
        }
        let mut node_kinds = Vec::with_capacity(file.nodes.len());
        for (i, name) in file.nodes.iter().enumerate() {
            let Some(&k) = kind_index.get(name.as_str()) else {
                let declared: Vec<String> = kinds.iter().map(|k| format!("`{}`", k.name)).collect();
                return Err(r.err(
                    &index("nodes", i),
                    format!(
                        "node {i} has unknown kind `{name}`; the model declares {}",
                        if declared.is_empty() {
                            "no kinds".to_owned()
                        } else {
                            format!("kinds {}", declared.join(", "))
                        }
                    ),
                ));
            };
            kinds[k].nodes.push(i);
            node_kinds.push(k);
        }
        let nodes: Vec<Node> = node_kinds
            .iter()
            .map(|&k| Node::new(kinds[k].spec.node_kind()))
            .collect();
        Ok(Validator {
            r,
            file,
            kinds,
            node_kinds,
            nodes,
        })
    }

    /// Check and compile the factors. Also returns the node set of every factor instance
    /// with its factor index, for blocking and colouring.
    #[allow(clippy::type_complexity)]
    fn factors(&self) -> Result<(Vec<Arc<dyn EBMFactor>>, Vec<(usize, Vec<usize>)>)> {
        let mut factors: Vec<Arc<dyn EBMFactor>> = Vec::new();
        let mut cliques: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut covered = vec![false; self.nodes.len()];
        for (fi, spec) in self.file.factors.iter().enumerate() {
            let path = index("factors", fi);
            let lib = |e: Error| self.r.err(&path, e.to_string());
            match spec {
                FactorSpec::Ising(f) => {
                    let f_path = |k: &str| join(&path, k);
                    for (j, &id) in f.nodes.iter().enumerate() {
                        self.check_node(id, &index(&f_path("nodes"), j), Some(Want::Spin))?;
                    }
                    if f.biases.len() != f.nodes.len() {
                        return Err(self.r.err(
                            &f_path("biases"),
                            format!(
                                "has {} but nodes has {}; one bias per node",
                                count(f.biases.len(), "entry", "entries"),
                                count(f.nodes.len(), "node", "nodes")
                            ),
                        ));
                    }
                    for (j, &[a, b]) in f.edges.iter().enumerate() {
                        let e_path = index(&f_path("edges"), j);
                        self.check_node(a, &index(&e_path, 0), Some(Want::Spin))?;
                        self.check_node(b, &index(&e_path, 1), Some(Want::Spin))?;
                        if a == b {
                            return Err(self
                                .r
                                .err(&e_path, format!("edge joins node {a} to itself")));
                        }
                    }
                    if f.weights.len() != f.edges.len() {
                        return Err(self.r.err(
                            &f_path("weights"),
                            format!(
                                "has {} but edges has {}; one weight per edge",
                                count(f.weights.len(), "entry", "entries"),
                                count(f.edges.len(), "edge", "edges")
                            ),
                        ));
                    }
                    if !f.beta.is_finite() {
                        return Err(self.r.err(&f_path("beta"), "beta must be finite"));
                    }
                    let biases = to_f32(&self.r, &f_path("biases"), &f.biases, f.beta)?;
                    let weights = to_f32(&self.r, &f_path("weights"), &f.weights, f.beta)?;
                    if !f.nodes.is_empty() {
                        let group = self.block(&f.nodes, NodeKind::SPIN).map_err(lib)?;
                        let w = Array1::from(biases).into_dyn();
                        factors.push(Arc::new(SpinEBMFactor::new(vec![group], w).map_err(lib)?));
                    }
                    if !f.edges.is_empty() {
                        let heads: Vec<usize> = f.edges.iter().map(|e| e[0]).collect();
                        let tails: Vec<usize> = f.edges.iter().map(|e| e[1]).collect();
                        let groups = vec![
                            self.block(&heads, NodeKind::SPIN).map_err(lib)?,
                            self.block(&tails, NodeKind::SPIN).map_err(lib)?,
                        ];
                        let w = Array1::from(weights).into_dyn();
                        factors.push(Arc::new(SpinEBMFactor::new(groups, w).map_err(lib)?));
                        cliques.extend(f.edges.iter().map(|e| (fi, e.to_vec())));
                    }
                }
                FactorSpec::Spin(f) => {
                    let g_path = join(&path, "groups");
                    let groups: Vec<(String, &[usize], Want)> = f
                        .groups
                        .iter()
                        .enumerate()
                        .map(|(k, g)| (index(&g_path, k), g.as_slice(), Want::Spin))
                        .collect();
                    let batch = self.check_groups(&path, &groups)?;
                    let w_path = join(&path, "weights");
                    if f.weights.len() != batch {
                        return Err(self.r.err(
                            &w_path,
                            format!(
                                "has {}, expected {batch} (one per factor instance)",
                                count(f.weights.len(), "entry", "entries")
                            ),
                        ));
                    }
                    let w = to_f32(&self.r, &w_path, &f.weights, 1.0)?;
                    if batch > 0 {
                        let blocks = f
                            .groups
                            .iter()
                            .map(|g| self.block(g, NodeKind::SPIN))
                            .collect::<Result<Vec<_>>>()
                            .map_err(lib)?;
                        let w = Array1::from(w).into_dyn();
                        factors.push(Arc::new(SpinEBMFactor::new(blocks, w).map_err(lib)?));
                    }
                    cliques.extend(instances(fi, &f.groups, batch));
                }
                FactorSpec::Categorical(f) => {
                    let g_path = join(&path, "groups");
                    let groups: Vec<(String, &[usize], Want)> = f
                        .groups
                        .iter()
                        .enumerate()
                        .map(|(k, g)| (index(&g_path, k), g.as_slice(), Want::Categorical))
                        .collect();
                    let batch = self.check_groups(&path, &groups)?;
                    let w_path = join(&path, "weights");
                    let cats: Vec<(String, &[usize])> =
                        groups.iter().map(|(p, g, _)| (p.clone(), *g)).collect();
                    self.check_category_axes(&w_path, &f.weights, batch, &cats, f.square)?;
                    let w = tensor_f32(&self.r, &w_path, &f.weights)?;
                    if batch > 0 {
                        let blocks = f
                            .groups
                            .iter()
                            .map(|g| self.block(g, NodeKind::CATEGORICAL))
                            .collect::<Result<Vec<_>>>()
                            .map_err(lib)?;
                        let factor: Arc<dyn EBMFactor> = if f.square {
                            Arc::new(SquareCategoricalEBMFactor::new(blocks, w).map_err(lib)?)
                        } else {
                            Arc::new(CategoricalEBMFactor::new(blocks, w).map_err(lib)?)
                        };
                        factors.push(factor);
                    }
                    cliques.extend(instances(fi, &f.groups, batch));
                }
                FactorSpec::Discrete(f) => {
                    let s_path = join(&path, "spin_groups");
                    let c_path = join(&path, "categorical_groups");
                    let mut groups: Vec<(String, &[usize], Want)> = f
                        .spin_groups
                        .iter()
                        .enumerate()
                        .map(|(k, g)| (index(&s_path, k), g.as_slice(), Want::Spin))
                        .collect();
                    groups.extend(
                        f.categorical_groups
                            .iter()
                            .enumerate()
                            .map(|(k, g)| (index(&c_path, k), g.as_slice(), Want::Categorical)),
                    );
                    let batch = self.check_groups(&path, &groups)?;
                    let w_path = join(&path, "weights");
                    let cats: Vec<(String, &[usize])> = groups[f.spin_groups.len()..]
                        .iter()
                        .map(|(p, g, _)| (p.clone(), *g))
                        .collect();
                    self.check_category_axes(&w_path, &f.weights, batch, &cats, f.square)?;
                    let w = tensor_f32(&self.r, &w_path, &f.weights)?;
                    if batch > 0 {
                        let spin = f
                            .spin_groups
                            .iter()
                            .map(|g| self.block(g, NodeKind::SPIN))
                            .collect::<Result<Vec<_>>>()
                            .map_err(lib)?;
                        let cat = f
                            .categorical_groups
                            .iter()
                            .map(|g| self.block(g, NodeKind::CATEGORICAL))
                            .collect::<Result<Vec<_>>>()
                            .map_err(lib)?;
                        let factor: Arc<dyn EBMFactor> = if f.square {
                            Arc::new(SquareDiscreteEBMFactor::new(spin, cat, w).map_err(lib)?)
                        } else {
                            Arc::new(DiscreteEBMFactor::new(spin, cat, w).map_err(lib)?)
                        };
                        factors.push(factor);
                    }
                    let all: Vec<Vec<usize>> = f
                        .spin_groups
                        .iter()
                        .chain(&f.categorical_groups)
                        .cloned()
                        .collect();
                    cliques.extend(instances(fi, &all, batch));
                }
                FactorSpec::Linear(f) => {
                    let w = self.node_terms(&path, &f.nodes, &f.weights, "weights")?;
                    if !f.nodes.is_empty() {
                        let block = self.block(&f.nodes, NodeKind::CONTINUOUS).map_err(lib)?;
                        factors.push(Arc::new(LinearFactor::new(block, w).map_err(lib)?));
                    }
                    cliques.extend(f.nodes.iter().map(|&id| (fi, vec![id])));
                }
                FactorSpec::Quadratic(f) => {
                    let a = self.node_terms(&path, &f.nodes, &f.precisions, "precisions")?;
                    let p_path = join(&path, "precisions");
                    for (j, (&id, &v)) in f.nodes.iter().zip(&a).enumerate() {
                        if v <= 0.0 {
                            return Err(self.r.err(
                                &index(&p_path, j),
                                format!(
                                    "{} has precision {v}; precisions must be positive",
                                    self.node_label(id)
                                ),
                            ));
                        }
                        covered[id] = true;
                    }
                    if !f.nodes.is_empty() {
                        let block = self.block(&f.nodes, NodeKind::CONTINUOUS).map_err(lib)?;
                        factors.push(Arc::new(QuadraticFactor::new(block, a).map_err(lib)?));
                    }
                    cliques.extend(f.nodes.iter().map(|&id| (fi, vec![id])));
                }
                FactorSpec::Coupling(f) | FactorSpec::SpinContinuous(f) => {
                    let spin_first = matches!(spec, FactorSpec::SpinContinuous(_));
                    let first = if spin_first {
                        Want::Spin
                    } else {
                        Want::Continuous
                    };
                    let e_path = join(&path, "edges");
                    for (j, &[a, b]) in f.edges.iter().enumerate() {
                        let p = index(&e_path, j);
                        self.check_node(a, &index(&p, 0), Some(first))?;
                        self.check_node(b, &index(&p, 1), Some(Want::Continuous))?;
                        if a == b {
                            return Err(self.r.err(&p, format!("edge joins node {a} to itself")));
                        }
                    }
                    let w_path = join(&path, "weights");
                    if f.weights.len() != f.edges.len() {
                        return Err(self.r.err(
                            &w_path,
                            format!(
                                "has {} but edges has {}; one weight per edge",
                                count(f.weights.len(), "entry", "entries"),
                                count(f.edges.len(), "edge", "edges")
                            ),
                        ));
                    }
                    let w = to_f32(&self.r, &w_path, &f.weights, 1.0)?;
                    if !f.edges.is_empty() {
                        let heads: Vec<usize> = f.edges.iter().map(|e| e[0]).collect();
                        let tails: Vec<usize> = f.edges.iter().map(|e| e[1]).collect();
                        let head_kind = if spin_first {
                            NodeKind::SPIN
                        } else {
                            NodeKind::CONTINUOUS
                        };
                        let a = self.block(&heads, head_kind).map_err(lib)?;
                        let b = self.block(&tails, NodeKind::CONTINUOUS).map_err(lib)?;
                        let factor: Arc<dyn EBMFactor> = if spin_first {
                            Arc::new(SpinContinuousFactor::new(a, b, w).map_err(lib)?)
                        } else {
                            Arc::new(CouplingFactor::new(a, b, w).map_err(lib)?)
                        };
                        factors.push(factor);
                        cliques.extend(f.edges.iter().map(|e| (fi, e.to_vec())));
                    }
                }
            }
        }
        // Every continuous node needs a positive quadratic term, or its conditional (and the
        // model's density) is not normalisable.
        if let Some(id) = (0..self.nodes.len())
            .find(|&id| self.kind_of(id).spec == KindSpec::Continuous && !covered[id])
        {
            return Err(self.r.err(
                &index("nodes", id),
                format!(
                    "{} is continuous but no quadratic factor gives it a precision; its density is not normalisable",
                    self.node_label(id)
                ),
            ));
        }
        Ok((factors, cliques))
    }

    /// Check the nodes (continuous, in range) and values (one per node, `f32`) of a linear
    /// or quadratic factor.
    fn node_terms(
        &self,
        path: &str,
        nodes: &[usize],
        values: &[f64],
        key: &str,
    ) -> Result<Vec<f32>> {
        let n_path = join(path, "nodes");
        for (j, &id) in nodes.iter().enumerate() {
            self.check_node(id, &index(&n_path, j), Some(Want::Continuous))?;
        }
        let v_path = join(path, key);
        if values.len() != nodes.len() {
            return Err(self.r.err(
                &v_path,
                format!(
                    "has {} but nodes has {}; one value per node",
                    count(values.len(), "entry", "entries"),
                    count(nodes.len(), "node", "nodes")
                ),
            ));
        }
        to_f32(&self.r, &v_path, values, 1.0)
    }

    /// Check the clamped blocks and values. Returns, per node, the clamped block holding it,
    /// and the values of each clamped block (spins 1 = +1, 0 = −1; categories).
    #[allow(clippy::type_complexity)]
    fn clamped(&self) -> Result<(Vec<Option<usize>>, Vec<Vec<usize>>)> {
        let n = self.nodes.len();
        let mut clamped_in: Vec<Option<usize>> = vec![None; n];
        if self.file.clamped_values.len() != self.file.clamped_blocks.len() {
            return Err(self.r.err(
                "clamped_values",
                format!(
                    "has {} but clamped_blocks has {}; give one list of values per clamped block",
                    count(self.file.clamped_values.len(), "entry", "entries"),
                    count(self.file.clamped_blocks.len(), "block", "blocks")
                ),
            ));
        }
        let mut clamped_values = Vec::with_capacity(self.file.clamped_blocks.len());
        for (bi, (block, values)) in self
            .file
            .clamped_blocks
            .iter()
            .zip(&self.file.clamped_values)
            .enumerate()
        {
            let path = index("clamped_blocks", bi);
            self.check_block(block, &path)?;
            for &id in block {
                if let Some(prev) = clamped_in[id] {
                    return Err(self.r.err(
                        &path,
                        format!(
                            "{} is already clamped in {}",
                            self.node_label(id),
                            index("clamped_blocks", prev)
                        ),
                    ));
                }
                clamped_in[id] = Some(bi);
            }
            let vpath = index("clamped_values", bi);
            if values.len() != block.len() {
                return Err(self.r.err(
                    &vpath,
                    format!(
                        "has {} but {path} has {}",
                        count(values.len(), "value", "values"),
                        count(block.len(), "node", "nodes")
                    ),
                ));
            }
            let mut out = Vec::with_capacity(values.len());
            for (j, (&id, &x)) in block.iter().zip(values).enumerate() {
                if self.kind_of(id).spec == KindSpec::Continuous {
                    return Err(self.r.err(
                        &index(&path, j),
                        format!(
                            "{} is continuous; model files clamp only spin and categorical nodes",
                            self.node_label(id)
                        ),
                    ));
                }
                let value = match self.kind_of(id).spec {
                    KindSpec::Spin => match x {
                        1 => Some(1),
                        -1 => Some(0),
                        _ => None,
                    },
                    KindSpec::Categorical { categories } => {
                        usize::try_from(x).ok().filter(|&c| c < categories)
                    }
                    KindSpec::Continuous => None,
                };
                let Some(value) = value else {
                    let allowed = match self.kind_of(id).spec {
                        KindSpec::Spin => "-1 or +1".to_owned(),
                        KindSpec::Categorical { categories } => {
                            format!("a category from 0 to {}", categories - 1)
                        }
                        KindSpec::Continuous => "a spin or categorical node".to_owned(),
                    };
                    return Err(self.r.err(
                        &index(&vpath, j),
                        format!(
                            "{} is clamped to {x}; expected {allowed}",
                            self.node_label(id)
                        ),
                    ));
                };
                out.push(value);
            }
            clamped_values.push(out);
        }
        Ok((clamped_in, clamped_values))
    }
}

/// The node sets of the `batch` instances of a factor with `groups`.
fn instances(
    factor: usize,
    groups: &[Vec<usize>],
    batch: usize,
) -> impl Iterator<Item = (usize, Vec<usize>)> + '_ {
    (0..batch).map(move |b| (factor, groups.iter().map(|g| g[b]).collect()))
}

impl Validator<'_> {
    /// A block: non-empty, ids in range, one kind, no repeats.
    fn check_block(&self, block: &[usize], path: &str) -> Result<()> {
        let Some(&first) = block.first() else {
            return Err(self
                .r
                .err(path, "empty block; a block needs at least one node"));
        };
        for (j, &id) in block.iter().enumerate() {
            self.check_node(id, &index(path, j), None)?;
            if self.node_kinds[id] != self.node_kinds[first] {
                return Err(self.r.err(
                    path,
                    format!(
                        "block mixes kinds: node {first} is `{}` but node {id} is `{}`; a block holds nodes of one kind",
                        self.kind_of(first).name,
                        self.kind_of(id).name
                    ),
                ));
            }
            if block[..j].contains(&id) {
                return Err(self.r.err(
                    &index(path, j),
                    format!("{} appears twice in this block", self.node_label(id)),
                ));
            }
        }
        Ok(())
    }

    /// DSATUR colouring of the free nodes' interaction graph; one superblock per colour, one
    /// block per kind (in kind-name order), node ids ascending.
    fn auto_blocks(
        &self,
        clamped_in: &[Option<usize>],
        cliques: &[(usize, Vec<usize>)],
    ) -> Result<Vec<Vec<Vec<usize>>>> {
        let free: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| clamped_in[i].is_none())
            .collect();
        let mut local = vec![usize::MAX; self.nodes.len()];
        for (l, &g) in free.iter().enumerate() {
            local[g] = l;
        }
        let adj = Adjacency::from_cliques(
            free.len(),
            cliques.iter().map(|(_, c)| {
                c.iter()
                    .filter(|&&g| local[g] != usize::MAX)
                    .map(|&g| local[g])
                    .collect::<Vec<_>>()
            }),
        )
        .map_err(|e| self.r.err("free_blocks", e.to_string()))?;
        let colours = dsatur_colouring(&adj);
        Ok(colour_classes(&colours)
            .into_iter()
            .filter(|class| !class.is_empty())
            .map(|class| {
                let mut by_kind: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
                for l in class {
                    by_kind
                        .entry(self.node_kinds[free[l]])
                        .or_default()
                        .push(free[l]);
                }
                by_kind.into_values().collect()
            })
            .collect())
    }

    fn explicit_blocks(
        &self,
        superblocks: &[SuperBlockSpec],
        clamped_in: &[Option<usize>],
        cliques: &[(usize, Vec<usize>)],
    ) -> Result<Vec<Vec<Vec<usize>>>> {
        let n = self.nodes.len();
        // For each node: (superblock, path of its block).
        let mut placed: Vec<Option<(usize, String)>> = vec![None; n];
        let mut out = Vec::with_capacity(superblocks.len());
        for (si, sb) in superblocks.iter().enumerate() {
            let s_path = index("free_blocks", si);
            let blocks = sb.blocks();
            if blocks.is_empty() {
                return Err(self.r.err(&s_path, "empty superblock"));
            }
            for (bj, block) in blocks.iter().enumerate() {
                let path = match sb {
                    SuperBlockSpec::Block(_) => s_path.clone(),
                    SuperBlockSpec::Blocks(_) => index(&s_path, bj),
                };
                self.check_block(block, &path)?;
                for &id in *block {
                    if let Some(cb) = clamped_in[id] {
                        return Err(self.r.err(
                            &path,
                            format!(
                                "{} is clamped in {}; a node is either free or clamped",
                                self.node_label(id),
                                index("clamped_blocks", cb)
                            ),
                        ));
                    }
                    if let Some((_, prev)) = &placed[id] {
                        return Err(self.r.err(
                            &path,
                            format!(
                                "{} is already in {prev}; every free node is in exactly one block",
                                self.node_label(id)
                            ),
                        ));
                    }
                    placed[id] = Some((si, path.clone()));
                }
            }
            out.push(blocks.iter().map(|b| b.to_vec()).collect());
        }
        if let Some(id) = (0..n).find(|&i| clamped_in[i].is_none() && placed[i].is_none()) {
            return Err(self.r.err(
                "free_blocks",
                format!(
                    "{} is in no free block and not clamped; the free blocks must cover every node that is not clamped",
                    self.node_label(id)
                ),
            ));
        }
        // Nodes of one superblock are updated from the same state: they must not interact.
        for (fi, clique) in cliques {
            for (k, &a) in clique.iter().enumerate() {
                for &b in &clique[..k] {
                    if let (Some((sa, _)), Some((sb, _))) = (&placed[a], &placed[b])
                        && sa == sb
                    {
                        return Err(self.r.err(
                            &index("free_blocks", *sa),
                            format!(
                                "nodes {b} and {a} interact (through {}) but are in the same superblock; \
                                 nodes updated at the same time must not interact",
                                index("factors", *fi)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn compile_program(
    kinds: &[ModelKind],
    node_kinds: &[usize],
    nodes: &[Node],
    factors: &[Arc<dyn EBMFactor>],
    free: &[Vec<Vec<usize>>],
    clamped: &[Vec<usize>],
) -> Result<FactorSamplingProgram> {
    let to_block = |ids: &[usize]| -> Result<Block> {
        let kind = kinds[node_kinds[ids[0]]].spec.node_kind();
        Block::of_kind(kind, ids.iter().map(|&i| nodes[i]).collect())
    };
    let superblocks = free
        .iter()
        .map(|sb| {
            sb.iter()
                .map(|b| to_block(b))
                .collect::<Result<Vec<_>>>()
                .map(SuperBlock)
        })
        .collect::<Result<Vec<_>>>()?;
    let clamped_blocks = clamped
        .iter()
        .map(|b| to_block(b))
        .collect::<Result<Vec<_>>>()?;
    let samplers = free
        .iter()
        .flatten()
        .map(|b| kinds[node_kinds[b[0]]].spec.sampler())
        .collect();
    let spec = BlockGibbsSpec::new(superblocks, clamped_blocks, &default_node_shape_dtypes())?;
    FactorSamplingProgram::new(spec, samplers, factors, vec![])
}

/// Re-express a library error that names library node ids in terms of file node ids.
fn translate_library_error(r: &Reader<'_>, e: Error, ids: &HashMap<Node, usize>) -> Error {
    let file_id = |lib_id: u64| {
        ids.iter()
            .find(|(n, _)| n.id() == lib_id)
            .map_or_else(|| format!("#{lib_id}"), |(_, &i)| i.to_string())
    };
    match e {
        Error::InteractingBlock {
            a, b, superblock, ..
        } => r.err(
            &index("free_blocks", superblock),
            format!(
                "nodes {} and {} interact but are in the same superblock; nodes updated at the same time must not interact",
                file_id(a),
                file_id(b)
            ),
        ),
        Error::Categories { node, reason } => r.err(
            "factors",
            format!("node {}: {reason}", file_id(node)),
        ),
        other => r.err("(model)", other.to_string()),
    }
}

impl Model {
    /// The file the model was read from (or the label given to [`Model::new`]).
    #[must_use]
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The parsed file.
    #[must_use]
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// The kinds, in name order.
    #[must_use]
    pub fn kinds(&self) -> &[ModelKind] {
        &self.kinds
    }

    /// The kind of node `id`.
    ///
    /// # Panics
    /// If `id` is not a node of the model.
    #[must_use]
    pub fn kind_of(&self, id: usize) -> &ModelKind {
        &self.kinds[self.node_kinds[id]]
    }

    /// Number of nodes.
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The library node of node `id`.
    ///
    /// # Panics
    /// If `id` is not a node of the model.
    #[must_use]
    pub fn node(&self, id: usize) -> Node {
        self.nodes[id]
    }

    /// The library nodes, indexed by node id.
    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The file node id of a library node.
    #[must_use]
    pub fn node_id(&self, node: Node) -> Option<usize> {
        self.ids.get(&node).copied()
    }

    /// The compiled factors (an `ising` factor gives a bias and an edge factor).
    #[must_use]
    pub fn factors(&self) -> &[Arc<dyn EBMFactor>] {
        &self.factors
    }

    /// The free superblocks in sampling order, each a list of blocks of node ids (resolved
    /// from `"auto"` if the file asked for it).
    #[must_use]
    pub fn free_superblocks(&self) -> &[Vec<Vec<usize>>] {
        &self.free
    }

    /// The clamped blocks, as node ids.
    #[must_use]
    pub fn clamped_blocks(&self) -> &[Vec<usize>] {
        &self.clamped
    }

    /// The free node ids, ascending.
    #[must_use]
    pub fn free_nodes(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = self.free.iter().flatten().flatten().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The kinds with free nodes, each with its free node ids (ascending): the arrays of a
    /// sample output, in order.
    #[must_use]
    pub fn sampled_kinds(&self) -> Vec<(&ModelKind, Vec<usize>)> {
        let mut per_kind: Vec<Vec<usize>> = vec![Vec::new(); self.kinds.len()];
        for id in self.free_nodes() {
            per_kind[self.node_kinds[id]].push(id);
        }
        self.kinds
            .iter()
            .zip(per_kind)
            .filter(|(_, ids)| !ids.is_empty())
            .collect()
    }

    /// The compiled sampling program (free superblocks, clamped blocks, samplers).
    #[must_use]
    pub fn program(&self) -> &FactorSamplingProgram {
        &self.program
    }

    /// The model's energy function: the sum of its factors.
    #[must_use]
    pub fn ebm(&self) -> FactorizedEBM {
        FactorizedEBM::new(self.factors.clone())
    }

    fn block_of(&self, ids: &[usize]) -> Block {
        let kind = self.kind_of(ids[0]).spec.node_kind();
        Block::of_kind(kind, ids.iter().map(|&i| self.nodes[i]).collect())
            .expect("blocks of a validated model hold one kind")
    }

    fn tensor_of(&self, kind: KindSpec, shape: &[usize], values: Vec<usize>) -> Tensor {
        let shape = IxDyn(shape);
        match kind {
            KindSpec::Spin => Tensor::Bool(
                ArrayD::from_shape_vec(shape, values.into_iter().map(|v| v == 1).collect())
                    .expect("shape matches"),
            ),
            KindSpec::Categorical { .. } => Tensor::U8(
                ArrayD::from_shape_vec(
                    shape,
                    values
                        .into_iter()
                        .map(|v| u8::try_from(v).expect("categories fit u8"))
                        .collect(),
                )
                .expect("shape matches"),
            ),
            #[allow(clippy::cast_precision_loss)]
            KindSpec::Continuous => Tensor::F32(
                ArrayD::from_shape_vec(shape, values.into_iter().map(|v| v as f32).collect())
                    .expect("shape matches"),
            ),
        }
    }

    /// Uniformly random initial states of the free blocks for `chains` chains, one
    /// `[chains, block nodes]` state per free block (in the program's order); continuous
    /// nodes start at standard normal draws.
    ///
    /// Chain `c` draws the values of the free nodes in ascending id order from stream `c` of
    /// `key`, so the initial state does not depend on how the nodes are blocked.
    #[must_use]
    pub fn random_init(&self, key: Key, chains: usize) -> Vec<State> {
        let free = self.free_nodes();
        let mut pos = vec![usize::MAX; self.nodes.len()];
        for (p, &id) in free.iter().enumerate() {
            pos[id] = p;
        }
        let mut values = Array2::<usize>::zeros((chains, free.len()));
        let mut reals = Array2::<f32>::zeros((chains, free.len()));
        for (c, mut rng) in key.chain_rngs(chains).into_iter().enumerate() {
            for (p, &id) in free.iter().enumerate() {
                match self.kind_of(id).spec {
                    KindSpec::Continuous => reals[[c, p]] = rng.sample(StandardNormal),
                    spec => values[[c, p]] = rng.random_range(0..spec.n_values()),
                }
            }
        }
        self.free
            .iter()
            .flatten()
            .map(|block| {
                if self.kind_of(block[0]).spec == KindSpec::Continuous {
                    let flat: Vec<f32> = (0..chains)
                        .flat_map(|c| block.iter().map(move |&id| (c, id)))
                        .map(|(c, id)| reals[[c, pos[id]]])
                        .collect();
                    let a = ArrayD::from_shape_vec(IxDyn(&[chains, block.len()]), flat)
                        .expect("shape matches");
                    return vec![Tensor::F32(a)];
                }
                let flat: Vec<usize> = (0..chains)
                    .flat_map(|c| block.iter().map(move |&id| (c, id)))
                    .map(|(c, id)| values[[c, pos[id]]])
                    .collect();
                vec![self.tensor_of(self.kind_of(block[0]).spec, &[chains, block.len()], flat)]
            })
            .collect()
    }

    /// The clamped values, one `[block nodes]` state per clamped block (shared by all
    /// chains).
    #[must_use]
    pub fn clamped_state(&self) -> Vec<State> {
        self.clamped
            .iter()
            .zip(&self.clamped_values)
            .map(|(block, values)| {
                vec![self.tensor_of(self.kind_of(block[0]).spec, &[block.len()], values.clone())]
            })
            .collect()
    }

    /// Sample `chains` chains with `schedule`, from uniformly random initial states.
    ///
    /// The seed determines everything: initial states come from
    /// `Key::new(seed).fold_in(0)` ([`Model::random_init`]), the run from
    /// `Key::new(seed).fold_in(1)`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `chains` is 0 or the samples would hold more than
    /// [`MAX_SAMPLE_VALUES`] values; any error from the run.
    pub fn sample(&self, seed: u64, chains: usize, schedule: &SamplingSchedule) -> Result<Samples> {
        self.sample_with_progress(seed, chains, schedule, None)
    }

    /// As [`Model::sample`], reporting progress to `progress` as
    /// [`sample_with_observation_and_progress`](crate::run::sample_with_observation_and_progress)
    /// does; the samples are bit-identical with and without it.
    ///
    /// # Errors
    /// As [`Model::sample`].
    pub fn sample_with_progress(
        &self,
        seed: u64,
        chains: usize,
        schedule: &SamplingSchedule,
        progress: Option<&mut dyn FnMut(crate::run::Progress)>,
    ) -> Result<Samples> {
        if chains == 0 {
            return Err(Error::Invalid(
                "the number of chains must be at least 1".into(),
            ));
        }
        let n_free = self.free_nodes().len();
        let size = chains
            .checked_mul(schedule.n_samples)
            .and_then(|x| x.checked_mul(n_free.max(1)));
        if size.is_none_or(|s| s > MAX_SAMPLE_VALUES) {
            return Err(Error::Invalid(format!(
                "{chains} chains × {} samples × {n_free} free nodes exceeds the limit of {MAX_SAMPLE_VALUES} sampled values held in memory",
                schedule.n_samples
            )));
        }
        let key = Key::new(seed);
        let init = self.random_init(key.fold_in(INIT_STREAM), chains);
        let clamp = self.clamped_state();
        let kinds = self.sampled_kinds();
        let blocks: Vec<Block> = kinds.iter().map(|(_, ids)| self.block_of(ids)).collect();
        let states = crate::run::sample_states_with_progress(
            key.fold_in(RUN_STREAM),
            &self.program,
            schedule,
            &init,
            &clamp,
            &blocks,
            progress,
        )?;
        Ok(Samples {
            n_chains: chains,
            n_samples: schedule.n_samples,
            kinds: kinds
                .into_iter()
                .zip(states)
                .map(|((kind, ids), mut state)| KindSamples {
                    kind: kind.name.clone(),
                    node_ids: ids,
                    states: state.swap_remove(0),
                })
                .collect(),
        })
    }

    /// Check states given as one array per kind (`[M, nodes of the kind]`, columns in
    /// ascending node id, all nodes of the model) and turn them into one block per kind.
    ///
    /// `source` names the states file in errors.
    ///
    /// # Errors
    /// [`Error::Array`] for a missing or unknown array, a wrong dtype or shape, arrays with
    /// different numbers of rows, or a categorical value out of range.
    pub fn states_from_arrays(
        &self,
        arrays: &BTreeMap<String, Tensor>,
        source: &Path,
    ) -> Result<(Vec<Block>, Vec<State>)> {
        let err = |message: String| Error::Array {
            path: source.to_path_buf(),
            message,
        };
        if let Some(name) = arrays
            .keys()
            .find(|name| !self.kinds.iter().any(|k| &k.name == *name))
        {
            let names: Vec<String> = self.kinds.iter().map(|k| format!("`{}`", k.name)).collect();
            return Err(err(format!(
                "array `{name}` does not name a kind of the model (kinds: {})",
                names.join(", ")
            )));
        }
        let mut rows: Option<(usize, &str)> = None;
        let mut blocks = Vec::new();
        let mut states = Vec::new();
        for kind in &self.kinds {
            let n = kind.nodes.len();
            let what = format!(
                "{} [M, {n}] for kind `{}` ({}{})",
                kind.spec.dtype(),
                kind.name,
                kind.spec.type_name(),
                match kind.spec {
                    KindSpec::Spin => ", true = +1".to_owned(),
                    KindSpec::Continuous => String::new(),
                    _ => format!(" with {} categories", kind.spec.n_values()),
                }
            );
            let Some(t) = arrays.get(&kind.name) else {
                if n == 0 {
                    continue;
                }
                return Err(err(format!(
                    "array `{}` is missing; expected {what}",
                    kind.name
                )));
            };
            if t.dtype() != kind.spec.dtype() {
                return Err(err(format!(
                    "array `{}` has dtype {}, expected {what}",
                    kind.name,
                    t.dtype()
                )));
            }
            if t.ndim() != 2 || t.shape()[1] != n {
                return Err(err(format!(
                    "array `{}` has shape {:?}, expected {what}",
                    kind.name,
                    t.shape()
                )));
            }
            let m = t.shape()[0];
            match rows {
                None => rows = Some((m, &kind.name)),
                Some((m0, name0)) if m0 != m => {
                    return Err(err(format!(
                        "array `{}` has {} but array `{name0}` has {m0}; every array has one row per state",
                        kind.name,
                        count(m, "row", "rows")
                    )));
                }
                Some(_) => {}
            }
            if let (KindSpec::Categorical { categories }, Tensor::U8(a)) = (kind.spec, t)
                && let Some((idx, &v)) = a
                    .indexed_iter()
                    .find(|(_, v)| usize::from(**v) >= categories)
            {
                return Err(err(format!(
                    "array `{}` row {} column {} (node {}) has value {v}, but kind `{}` has categories 0 to {}",
                    kind.name,
                    idx[0],
                    idx[1],
                    kind.nodes[idx[1]],
                    kind.name,
                    categories - 1
                )));
            }
            if n == 0 {
                continue;
            }
            blocks.push(self.block_of(&kind.nodes));
            states.push(vec![t.to_standard_layout()]);
        }
        Ok((blocks, states))
    }

    /// The energy of every state in `arrays` (as [`Model::states_from_arrays`]).
    ///
    /// # Errors
    /// As [`Model::states_from_arrays`], or from the energy.
    pub fn energy(&self, arrays: &BTreeMap<String, Tensor>, source: &Path) -> Result<Array1<f64>> {
        let (blocks, states) = self.states_from_arrays(arrays, source)?;
        self.ebm().energy(&states, &blocks)
    }

    /// The exact distribution of the free nodes (ascending id) given the clamped values, by
    /// enumeration. Only for small models.
    ///
    /// # Errors
    /// [`Error::Invalid`] if there are too many states; any error from the energy.
    pub fn exact_distribution(&self) -> Result<ExactDistribution> {
        if let Some(kind) = self.kinds.iter().find(|k| k.spec == KindSpec::Continuous) {
            return Err(Error::Invalid(format!(
                "{}: kind `{}` is continuous; exact enumeration needs spin and categorical nodes only",
                self.source.display(),
                kind.name
            )));
        }
        let var = |id: usize| match self.kind_of(id).spec {
            KindSpec::Spin => DiscreteVar::Spin(self.nodes[id]),
            KindSpec::Categorical { categories } => {
                DiscreteVar::Categorical(self.nodes[id], categories)
            }
            KindSpec::Continuous => unreachable!("checked above"),
        };
        let free: Vec<DiscreteVar> = self.free_nodes().into_iter().map(var).collect();
        let clamped: Vec<(DiscreteVar, usize)> = self
            .clamped
            .iter()
            .zip(&self.clamped_values)
            .flat_map(|(b, v)| b.iter().zip(v).map(|(&id, &x)| (var(id), x)))
            .collect();
        ExactDistribution::new(&self.ebm(), &free, &clamped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "format": "thrml-model/1",
      "kinds": { "s": {"type": "spin"}, "c": {"type": "categorical", "categories": 3} },
      "nodes": ["s", "s", "c", "c"],
      "factors": [
        {"type": "ising", "nodes": [0, 1], "biases": [0.1, -0.2], "edges": [[0, 1]], "weights": [0.5], "beta": 1.0},
        {"type": "spin", "groups": [[0], [1]], "weights": [0.3]},
        {"type": "categorical", "groups": [[2], [3]], "weights": {"shape": [1, 3, 3], "data": [0,1,0, 1,0,1, 0,1,0]}},
        {"type": "discrete", "square": true, "spin_groups": [[0], [1]], "categorical_groups": [[2]], "weights": [[0.2, -0.1, 0.4]]}
      ],
      "free_blocks": [[[0], [3]], [1], [2]],
      "clamped_blocks": [],
      "clamped_values": []
    }"#;

    fn err_of(text: &str) -> String {
        Model::from_str(text, "m.json").unwrap_err().to_string()
    }

    #[test]
    fn example_compiles_and_round_trips() {
        let m = Model::from_str(EXAMPLE, "m.json").unwrap();
        assert_eq!(m.n_nodes(), 4);
        assert_eq!(m.kinds()[0].name(), "c");
        assert_eq!(m.free_superblocks().len(), 3);
        assert_eq!(m.factors().len(), 5);
        let text = m.file().to_json();
        let again = ModelFile::from_str(&text, "again.json").unwrap();
        assert_eq!(&again, m.file());
    }

    #[test]
    fn auto_blocks_split_colours_by_kind() {
        let text = EXAMPLE.replace(
            r#""free_blocks": [[[0], [3]], [1], [2]]"#,
            r#""free_blocks": "auto""#,
        );
        let m = Model::from_str(&text, "m.json").unwrap();
        // 0, 1, 2 form a triangle (discrete factor); 3 interacts with 2 only.
        assert_eq!(m.free_superblocks().len(), 3);
        for sb in m.free_superblocks() {
            for b in sb {
                let k = m.kind_of(b[0]).name();
                assert!(b.iter().all(|&i| m.kind_of(i).name() == k));
            }
        }
        assert_eq!(m.free_nodes(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn errors_name_fields_and_nodes() {
        let e = err_of(&EXAMPLE.replace("thrml-model/1", "thrml-model/9"));
        assert!(e.starts_with("m.json: format: unsupported format"), "{e}");
        let e = err_of(&EXAMPLE.replace(r#"["s", "s", "c", "c"]"#, r#"["s", "s", "c", "x"]"#));
        assert!(
            e.contains("nodes[3]") && e.contains("unknown kind `x`"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace(r#""groups": [[2], [3]]"#, r#""groups": [[2], [9]]"#));
        assert!(
            e.contains("factors[2].groups[1][0]") && e.contains("node id 9"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace(r#""shape": [1, 3, 3]"#, r#""shape": [1, 9, 1]"#));
        assert!(
            e.contains("factors[2].weights") && e.contains("shape [1, 9, 1]"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("[0.5]", "[1e39]"));
        assert!(
            e.contains("factors[0].weights") && e.contains("32-bit"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("[0.3]", r#"["a"]"#));
        assert!(
            e.contains("factors[1].weights[0]") && e.contains("\"a\""),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1, 2]]"));
        assert!(
            e.contains("free_blocks[1]") && e.contains("mixes kinds"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("[[[0], [3]], [1], [2]]", "[[[0, 1], [3]], [2]]"));
        assert!(
            e.contains("free_blocks[0]") && e.contains("nodes 0 and 1 interact"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1]]"));
        assert!(e.contains("free_blocks") && e.contains("node 2"), "{e}");
        let e = err_of(
            &EXAMPLE
                .replace("[[[0], [3]], [1], [2]]", "[[[0], [3]], [1]]")
                .replace(r#""clamped_blocks": []"#, r#""clamped_blocks": [[2]]"#)
                .replace(r#""clamped_values": []"#, r#""clamped_values": [[3]]"#),
        );
        assert!(
            e.contains("clamped_values[0][0]") && e.contains("node 2"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace(r#""categories": 3"#, r#""categories": 300"#));
        assert!(e.contains("kinds.c.categories"), "{e}");
        let e = err_of(&EXAMPLE.replace(r#""beta": 1.0"#, r#""beta": 1.0, "bta": 2"#));
        assert!(e.contains("factors[0].bta: unknown field"), "{e}");
    }

    #[test]
    fn clamped_chain_matches_enumeration_in_expectation() {
        let text = r#"{
          "format": "thrml-model/1",
          "kinds": {"s": {"type": "spin"}},
          "nodes": ["s", "s", "s"],
          "factors": [{"type": "ising", "nodes": [0, 1, 2], "biases": [0.2, 0.0, 0.0],
                       "edges": [[0, 1], [1, 2]], "weights": [0.6, -0.4]}],
          "clamped_blocks": [[2]],
          "clamped_values": [[1]]
        }"#;
        let m = Model::from_str(text, "c.json").unwrap();
        let exact = m.exact_distribution().unwrap();
        let samples = m
            .sample(3, 200, &SamplingSchedule::new(5, 100, 2).unwrap())
            .unwrap();
        let values = samples.values();
        assert_eq!(values.len(), 20_000);
        let counts = exact
            .indices(&values)
            .into_iter()
            .fold(vec![0usize; 4], |mut c, i| {
                c[i] += 1;
                c
            });
        for (p, c) in exact.probabilities.iter().zip(counts) {
            assert!((c as f64 / 20_000.0 - p).abs() < 0.02, "{p} vs {c}");
        }
    }
}
