//! The model file as data: the `thrml-model/1` JSON schema and its parser.
//!
//! [`ModelFile::from_str`] and [`ModelFile::from_path`] check syntax and field types (every
//! error names the JSON path of the field) and return plain data; [`Model::new`](super::Model::new)
//! checks the meaning and compiles it. `docs/model-format.md` is the contract.
//!
//! Kinds and factors are enums tagged by their `type` so that new kinds and factor types
//! are new variants; both are `#[non_exhaustive]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::json::{Reader, describe, index, join, parse_strict};
use crate::models::continuous::GaussianGibbsConditional;
use crate::models::discrete::{CategoricalGibbsConditional, SpinGibbsConditional};
use crate::pgm::{DType, NodeKind};
use crate::sampler::AbstractConditionalSampler;

/// The format tag every model file starts with.
pub const MODEL_FORMAT: &str = "thrml-model/1";

/// The largest number of categories of a categorical kind (states are `u8`).
pub const MAX_CATEGORIES: usize = 256;

/// A node kind declared in a model file: the type of its nodes' states.
///
/// The kind's *name* (the key in `kinds`) is the user's label; several kinds may share a
/// type. All spin kinds use the library's [`NodeKind::SPIN`] layout (`bool`), all
/// categorical kinds [`NodeKind::CATEGORICAL`] (`u8`); the number of categories is a
/// property of the file kind and sets each block's sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum KindSpec {
    /// Spins: states −1 / +1, stored as `bool` (`true` = +1).
    Spin,
    /// Categoricals with `categories` states `0..categories`, stored as `u8`.
    Categorical {
        /// The number of categories, 1 to 256.
        categories: usize,
    },
    /// Continuous (Gaussian) nodes: one `f32` each, sampled by
    /// [`GaussianGibbsConditional`].
    Continuous,
}

impl KindSpec {
    /// The type's name in the file: `"spin"`, `"categorical"` or `"continuous"`.
    #[must_use]
    pub fn type_name(self) -> &'static str {
        match self {
            KindSpec::Spin => "spin",
            KindSpec::Categorical { .. } => "categorical",
            KindSpec::Continuous => "continuous",
        }
    }

    /// The number of values a node of this kind takes (2 for spins, 0 for continuous
    /// nodes, which take any real value).
    #[must_use]
    pub fn n_values(self) -> usize {
        match self {
            KindSpec::Spin => 2,
            KindSpec::Categorical { categories } => categories,
            KindSpec::Continuous => 0,
        }
    }

    /// The element type of a node's state.
    #[must_use]
    pub fn dtype(self) -> DType {
        match self {
            KindSpec::Spin => DType::Bool,
            KindSpec::Categorical { .. } => DType::U8,
            KindSpec::Continuous => DType::F32,
        }
    }

    /// The library node kind of this kind's nodes.
    #[must_use]
    pub fn node_kind(self) -> NodeKind {
        match self {
            KindSpec::Spin => NodeKind::SPIN,
            KindSpec::Categorical { .. } => NodeKind::CATEGORICAL,
            KindSpec::Continuous => NodeKind::CONTINUOUS,
        }
    }

    /// The Gibbs sampler for a block of this kind.
    #[must_use]
    pub fn sampler(self) -> Arc<dyn AbstractConditionalSampler> {
        match self {
            KindSpec::Spin => Arc::new(SpinGibbsConditional),
            KindSpec::Categorical { categories } => {
                Arc::new(CategoricalGibbsConditional::new(categories))
            }
            KindSpec::Continuous => Arc::new(GaussianGibbsConditional),
        }
    }
}

/// A dense tensor in a model file: `shape` and the entries flat in row-major order.
///
/// The file may write it as nested lists or as `{"shape": [...], "data": [...]}`; it is
/// written back in the second form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorSpec {
    /// The shape.
    pub shape: Vec<usize>,
    /// The entries, row-major.
    pub data: Vec<f64>,
}

/// An Ising factor: `E = −β (Σ_i b_i s_i + Σ_(i,j) J_ij s_i s_j)` (THRML's `IsingEBM`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IsingFactorSpec {
    /// The nodes with a bias.
    pub nodes: Vec<usize>,
    /// One bias per node.
    pub biases: Vec<f64>,
    /// The coupled pairs.
    pub edges: Vec<[usize; 2]>,
    /// One coupling per edge.
    pub weights: Vec<f64>,
    /// The inverse temperature, folded into the factor weights.
    pub beta: f64,
}

/// A spin factor: `E = −Σ_b w[b] Π_k s(groups[k][b])` (THRML's `SpinEBMFactor`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpinFactorSpec {
    /// The node groups, all of one length `B`.
    pub groups: Vec<Vec<usize>>,
    /// One weight per factor instance, `[B]`.
    pub weights: Vec<f64>,
}

/// A categorical factor: `E = −Σ_b W[b, c(groups[0][b]), …, c(groups[N−1][b])]`
/// (THRML's `CategoricalEBMFactor`, or `SquareCategoricalEBMFactor` if `square`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoricalFactorSpec {
    /// The node groups, all of one length `B`.
    pub groups: Vec<Vec<usize>>,
    /// The weights, `[B, K_0, …, K_(N−1)]`.
    pub weights: TensorSpec,
    /// Use the square variant (every category axis of one length).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub square: bool,
}

/// A general discrete factor:
/// `E = −Σ_b Π_k s(spin_groups[k][b]) · W[b, c(categorical_groups[0][b]), …]`
/// (THRML's `DiscreteEBMFactor`, or `SquareDiscreteEBMFactor` if `square`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiscreteFactorSpec {
    /// The spin node groups.
    pub spin_groups: Vec<Vec<usize>>,
    /// The categorical node groups.
    pub categorical_groups: Vec<Vec<usize>>,
    /// The weights, `[B, K_0, …]`, one category axis per categorical group.
    pub weights: TensorSpec,
    /// Use the square variant (every category axis of one length).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub square: bool,
}

/// Linear continuous terms: `E = Σ_b w[b] x(nodes[b])` (`"linear"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearFactorSpec {
    /// The continuous nodes.
    pub nodes: Vec<usize>,
    /// One weight per node.
    pub weights: Vec<f64>,
}

/// Quadratic continuous terms: `E = ½ Σ_b a[b] x(nodes[b])²`, `a > 0` (`"quadratic"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuadraticFactorSpec {
    /// The continuous nodes.
    pub nodes: Vec<usize>,
    /// One precision per node.
    pub precisions: Vec<f64>,
}

/// Pairwise terms with a continuous node: `E = Σ_b w[b] x(a) x(b)` over `edges` `[a, b]` of
/// continuous nodes for `"coupling"`, or `E = −Σ_b w[b] s(a) x(b)` over `edges`
/// `[spin, continuous]` for `"spin_continuous"`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContinuousPairFactorSpec {
    /// The pairs of node ids.
    pub edges: Vec<[usize; 2]>,
    /// One weight per pair.
    pub weights: Vec<f64>,
}

/// A factor of a model file, tagged by its `type`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum FactorSpec {
    /// `"ising"`
    Ising(IsingFactorSpec),
    /// `"spin"`
    Spin(SpinFactorSpec),
    /// `"categorical"`
    Categorical(CategoricalFactorSpec),
    /// `"discrete"`
    Discrete(DiscreteFactorSpec),
    /// `"linear"`: `E = Σ b x`.
    Linear(LinearFactorSpec),
    /// `"quadratic"`: `E = ½ Σ a x²`, `a > 0`.
    Quadratic(QuadraticFactorSpec),
    /// `"coupling"`: `E = Σ w x_i x_j`.
    Coupling(ContinuousPairFactorSpec),
    /// `"spin_continuous"`: `E = −Σ w s x`.
    #[serde(rename = "spin_continuous")]
    SpinContinuous(ContinuousPairFactorSpec),
}

/// One entry of an explicit `free_blocks` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SuperBlockSpec {
    /// A list of node ids: a superblock of one block.
    Block(Vec<usize>),
    /// A list of blocks updated at the same time.
    Blocks(Vec<Vec<usize>>),
}

impl SuperBlockSpec {
    /// The blocks of this superblock.
    #[must_use]
    pub fn blocks(&self) -> Vec<&[usize]> {
        match self {
            SuperBlockSpec::Block(b) => vec![b.as_slice()],
            SuperBlockSpec::Blocks(bs) => bs.iter().map(Vec::as_slice).collect(),
        }
    }
}

/// The free blocks of a model file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FreeBlocksSpec {
    /// `"auto"`: colour the interaction graph of the free nodes (DSATUR) and use one
    /// superblock per colour, with one block per kind.
    Auto,
    /// Superblocks in sampling order.
    Explicit(Vec<SuperBlockSpec>),
}

impl Serialize for FreeBlocksSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            FreeBlocksSpec::Auto => s.serialize_str("auto"),
            FreeBlocksSpec::Explicit(v) => v.serialize(s),
        }
    }
}

/// A parsed model file: plain data, checked for syntax and field types only.
///
/// [`Model::new`](crate::io::Model::new) validates and compiles it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// An optional free-text description.
    pub description: Option<String>,
    /// The node kinds, by name.
    pub kinds: BTreeMap<String, KindSpec>,
    /// The kind name of each node; node `i`'s id is `i`.
    pub nodes: Vec<String>,
    /// The factors; the energy is their sum.
    pub factors: Vec<FactorSpec>,
    /// The free superblocks.
    pub free_blocks: FreeBlocksSpec,
    /// The clamped blocks.
    pub clamped_blocks: Vec<Vec<usize>>,
    /// One value per node of each clamped block: spins −1 / +1, categories `0..K`.
    pub clamped_values: Vec<Vec<i64>>,
}

impl Serialize for ModelFile {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ModelFile", 8)?;
        st.serialize_field("format", MODEL_FORMAT)?;
        if let Some(d) = &self.description {
            st.serialize_field("description", d)?;
        }
        st.serialize_field("kinds", &self.kinds)?;
        st.serialize_field("nodes", &self.nodes)?;
        st.serialize_field("factors", &self.factors)?;
        st.serialize_field("free_blocks", &self.free_blocks)?;
        st.serialize_field("clamped_blocks", &self.clamped_blocks)?;
        st.serialize_field("clamped_values", &self.clamped_values)?;
        st.end()
    }
}

const TOP_FIELDS: &[&str] = &[
    "format",
    "description",
    "kinds",
    "nodes",
    "factors",
    "free_blocks",
    "clamped_blocks",
    "clamped_values",
];

impl ModelFile {
    /// Read and parse a model file.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, [`Error::Model`] if it is not a well-formed model
    /// file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<ModelFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ModelFile::from_str(&text, path)
    }

    /// Parse model JSON; `source` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Model`]: invalid JSON (with line and column), duplicate keys, a wrong format
    /// tag, unknown or missing fields, or fields of the wrong type.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, source: impl AsRef<Path>) -> Result<ModelFile> {
        let source = source.as_ref();
        let value = parse_strict(text, source)?;
        ModelFile::from_value(&value, source)
    }

    /// Convert an already parsed JSON value.
    ///
    /// # Errors
    /// As [`ModelFile::from_str`].
    pub fn from_value(value: &Value, source: impl AsRef<Path>) -> Result<ModelFile> {
        parse_file(&Reader::new(source.as_ref()), value)
    }

    /// The file as pretty-printed JSON (tensors in `{"shape", "data"}` form).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn parse_file(r: &Reader<'_>, v: &Value) -> Result<ModelFile> {
    let Value::Object(map) = v else {
        return Err(r.err(
            "",
            format!("expected a model object, found {}", describe(v)),
        ));
    };
    // The format tag first: a file of another version gets that error, not "unknown field".
    let format = r.string(r.required(map, "", "format")?, "format")?;
    if format != MODEL_FORMAT {
        return Err(r.err(
            "format",
            format!("unsupported format {format:?}; this version of thrml reads {MODEL_FORMAT:?}"),
        ));
    }
    let map = r.object(v, "", TOP_FIELDS)?;
    let description = map
        .get("description")
        .map(|d| r.string(d, "description").map(str::to_owned))
        .transpose()?;
    let kinds_value = r.required(map, "", "kinds")?;
    let kinds_map = r.map(kinds_value, "kinds")?;
    let mut kinds = BTreeMap::new();
    for (name, spec) in kinds_map {
        kinds.insert(name.clone(), parse_kind(r, spec, &join("kinds", name))?);
    }
    let nodes = r
        .list(r.required(map, "", "nodes")?, "nodes")?
        .iter()
        .enumerate()
        .map(|(i, n)| r.string(n, &index("nodes", i)).map(str::to_owned))
        .collect::<Result<Vec<_>>>()?;
    let factors = match map.get("factors") {
        None => Vec::new(),
        Some(f) => r
            .list(f, "factors")?
            .iter()
            .enumerate()
            .map(|(i, f)| parse_factor(r, f, &index("factors", i)))
            .collect::<Result<Vec<_>>>()?,
    };
    let free_blocks = match map.get("free_blocks") {
        None => FreeBlocksSpec::Auto,
        Some(Value::String(s)) if s == "auto" => FreeBlocksSpec::Auto,
        Some(Value::String(s)) => {
            return Err(r.err(
                "free_blocks",
                format!("unknown value {s:?}; expected \"auto\" or a list of superblocks"),
            ));
        }
        Some(v) => FreeBlocksSpec::Explicit(
            r.list(v, "free_blocks")?
                .iter()
                .enumerate()
                .map(|(i, sb)| parse_superblock(r, sb, &index("free_blocks", i)))
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let clamped_blocks = match map.get("clamped_blocks") {
        None => Vec::new(),
        Some(v) => r.id_lists(v, "clamped_blocks")?,
    };
    let clamped_values = match map.get("clamped_values") {
        None => Vec::new(),
        Some(v) => r
            .list(v, "clamped_values")?
            .iter()
            .enumerate()
            .map(|(i, vals)| {
                let path = index("clamped_values", i);
                r.list(vals, &path)?
                    .iter()
                    .enumerate()
                    .map(|(j, x)| {
                        r.i64(
                            x,
                            &index(&path, j),
                            "an integer (a spin as -1 or +1, a category as 0..K-1)",
                        )
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(ModelFile {
        description,
        kinds,
        nodes,
        factors,
        free_blocks,
        clamped_blocks,
        clamped_values,
    })
}

fn parse_kind(r: &Reader<'_>, v: &Value, path: &str) -> Result<KindSpec> {
    let map = r.object(v, path, &["type", "categories"])?;
    let type_path = join(path, "type");
    match r.string(r.required(map, path, "type")?, &type_path)? {
        "spin" => {
            r.object(v, path, &["type"])?;
            Ok(KindSpec::Spin)
        }
        "categorical" => {
            let k_path = join(path, "categories");
            let categories = r.usize(
                r.required(map, path, "categories")?,
                &k_path,
                "a number of categories (an integer from 1 to 256)",
            )?;
            Ok(KindSpec::Categorical { categories })
        }
        "continuous" => {
            r.object(v, path, &["type"])?;
            Ok(KindSpec::Continuous)
        }
        other => Err(r.err(
            &type_path,
            format!(
                "unknown kind type {other:?}; expected \"spin\", \"categorical\" or \"continuous\""
            ),
        )),
    }
}

/// A rank-1 tensor as a list.
fn parse_vector(r: &Reader<'_>, v: &Value, path: &str) -> Result<Vec<f64>> {
    let (shape, data) = r.tensor(v, path)?;
    if shape.len() != 1 {
        return Err(r.err(
            path,
            format!("expected a list of numbers (rank 1), found a tensor of shape {shape:?}"),
        ));
    }
    Ok(data)
}

fn parse_factor(r: &Reader<'_>, v: &Value, path: &str) -> Result<FactorSpec> {
    let Value::Object(map) = v else {
        return Err(r.err(
            path,
            format!("expected a factor object, found {}", describe(v)),
        ));
    };
    let type_path = join(path, "type");
    let ty = r.string(r.required(map, path, "type")?, &type_path)?;
    let field = |key: &str| join(path, key);
    let square = |map: &serde_json::Map<String, Value>| -> Result<bool> {
        map.get("square")
            .map_or(Ok(false), |s| r.boolean(s, &field("square")))
    };
    match ty {
        "ising" => {
            let map = r.object(
                v,
                path,
                &["type", "nodes", "biases", "edges", "weights", "beta", "square"],
            )?;
            square(map)?;
            let nodes = r.ids(r.required(map, path, "nodes")?, &field("nodes"))?;
            let biases = parse_vector(r, r.required(map, path, "biases")?, &field("biases"))?;
            let edges = match map.get("edges") {
                None => Vec::new(),
                Some(e) => {
                    let edges_path = field("edges");
                    r.id_lists(e, &edges_path)?
                        .into_iter()
                        .enumerate()
                        .map(|(i, pair)| match pair.as_slice() {
                            &[a, b] => Ok([a, b]),
                            _ => Err(r.err(
                                &index(&edges_path, i),
                                format!(
                                    "an edge is a pair of node ids, found {} ids",
                                    pair.len()
                                ),
                            )),
                        })
                        .collect::<Result<Vec<_>>>()?
                }
            };
            let weights = match map.get("weights") {
                None => Vec::new(),
                Some(w) => parse_vector(r, w, &field("weights"))?,
            };
            let beta = map
                .get("beta")
                .map_or(Ok(1.0), |b| r.f64(b, &field("beta")))?;
            Ok(FactorSpec::Ising(IsingFactorSpec {
                nodes,
                biases,
                edges,
                weights,
                beta,
            }))
        }
        "spin" => {
            let map = r.object(v, path, &["type", "groups", "weights", "square"])?;
            square(map)?;
            Ok(FactorSpec::Spin(SpinFactorSpec {
                groups: r.id_lists(r.required(map, path, "groups")?, &field("groups"))?,
                weights: parse_vector(r, r.required(map, path, "weights")?, &field("weights"))?,
            }))
        }
        "categorical" => {
            let map = r.object(v, path, &["type", "groups", "weights", "square"])?;
            let (shape, data) = r.tensor(r.required(map, path, "weights")?, &field("weights"))?;
            Ok(FactorSpec::Categorical(CategoricalFactorSpec {
                groups: r.id_lists(r.required(map, path, "groups")?, &field("groups"))?,
                weights: TensorSpec { shape, data },
                square: square(map)?,
            }))
        }
        "linear" | "quadratic" => {
            let key = if ty == "linear" { "weights" } else { "precisions" };
            let map = r.object(v, path, &["type", "nodes", key])?;
            let nodes = r.ids(r.required(map, path, "nodes")?, &field("nodes"))?;
            let values = parse_vector(r, r.required(map, path, key)?, &field(key))?;
            Ok(if ty == "linear" {
                FactorSpec::Linear(LinearFactorSpec {
                    nodes,
                    weights: values,
                })
            } else {
                FactorSpec::Quadratic(QuadraticFactorSpec {
                    nodes,
                    precisions: values,
                })
            })
        }
        "coupling" | "spin_continuous" => {
            let map = r.object(v, path, &["type", "edges", "weights"])?;
            let edges_path = field("edges");
            let edges = r
                .id_lists(r.required(map, path, "edges")?, &edges_path)?
                .into_iter()
                .enumerate()
                .map(|(i, pair)| match pair.as_slice() {
                    &[a, b] => Ok([a, b]),
                    _ => Err(r.err(
                        &index(&edges_path, i),
                        format!("an edge is a pair of node ids, found {} ids", pair.len()),
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            let spec = ContinuousPairFactorSpec {
                edges,
                weights: parse_vector(r, r.required(map, path, "weights")?, &field("weights"))?,
            };
            Ok(if ty == "coupling" {
                FactorSpec::Coupling(spec)
            } else {
                FactorSpec::SpinContinuous(spec)
            })
        }
        "discrete" => {
            let map = r.object(
                v,
                path,
                &[
                    "type",
                    "spin_groups",
                    "categorical_groups",
                    "weights",
                    "square",
                ],
            )?;
            let groups = |key: &str| -> Result<Vec<Vec<usize>>> {
                map.get(key)
                    .map_or(Ok(Vec::new()), |g| r.id_lists(g, &field(key)))
            };
            let (shape, data) = r.tensor(r.required(map, path, "weights")?, &field("weights"))?;
            Ok(FactorSpec::Discrete(DiscreteFactorSpec {
                spin_groups: groups("spin_groups")?,
                categorical_groups: groups("categorical_groups")?,
                weights: TensorSpec { shape, data },
                square: square(map)?,
            }))
        }
        other => Err(r.err(
            &type_path,
            format!(
                "unknown factor type {other:?}; expected \"ising\", \"spin\", \"categorical\", \"discrete\", \"linear\", \"quadratic\", \"coupling\" or \"spin_continuous\""
            ),
        )),
    }
}

fn parse_superblock(r: &Reader<'_>, v: &Value, path: &str) -> Result<SuperBlockSpec> {
    let items = r.list(v, path)?;
    if items.iter().all(Value::is_array) && !items.is_empty() {
        Ok(SuperBlockSpec::Blocks(r.id_lists(v, path)?))
    } else if items.iter().any(Value::is_array) {
        Err(r.err(
            path,
            "mixes node ids and lists; a superblock is either a block (a list of node ids) or a list of blocks",
        ))
    } else {
        Ok(SuperBlockSpec::Block(r.ids(v, path)?))
    }
}
