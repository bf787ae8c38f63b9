//! Sample output: one `[chains, samples, nodes]` array per node kind, and its files.
//!
//! [`Samples::write_dir`] writes `samples.npz` (the arrays, named after their kinds) and
//! `nodes.json` (the node ids of each array's columns); [`Samples::read_dir`] reads them
//! back.

use std::path::{Path, PathBuf};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::io::json::{Reader, parse_strict};
use crate::io::npz::{read_npz, write_atomic, write_npz};
use crate::state::Tensor;

/// The samples of one kind: `[chains, samples, nodes]`, spins `bool` (`true` = +1),
/// categoricals `u8`, continuous nodes `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct KindSamples {
    /// The kind's name (the array's name in `samples.npz`).
    pub kind: String,
    /// The node id of each column, ascending.
    pub node_ids: Vec<usize>,
    /// The states, `[chains, samples, nodes]`.
    pub states: Tensor,
}

/// The output of [`Model::sample`](crate::io::Model::sample): one array per kind with free nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Number of chains.
    pub n_chains: usize,
    /// Number of samples per chain.
    pub n_samples: usize,
    /// One entry per kind with free nodes, in kind-name order.
    pub kinds: Vec<KindSamples>,
}

/// The file name of the sample arrays in an output directory.
pub const SAMPLES_FILE: &str = "samples.npz";
/// The file name of the column-to-node map in an output directory.
pub const NODES_FILE: &str = "nodes.json";

impl Samples {
    /// Write `DIR/nodes.json` (kind name → node ids of its columns) and then
    /// `DIR/samples.npz` (one array per kind), each atomically; creates `DIR` if needed.
    /// Returns the path of `samples.npz`.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Array`] naming the file.
    pub fn write_dir(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let nodes = dir.join(NODES_FILE);
        let text = self.nodes_json();
        write_atomic(&nodes, |f| {
            use std::io::Write;
            f.write_all(text.as_bytes()).map_err(|source| Error::Io {
                path: nodes.clone(),
                source,
            })
        })?;
        let path = dir.join(SAMPLES_FILE);
        let arrays: Vec<(&str, &Tensor)> = self
            .kinds
            .iter()
            .map(|k| (k.kind.as_str(), &k.states))
            .collect();
        write_npz(&path, &arrays)?;
        Ok(path)
    }

    /// The contents of `nodes.json`: `{"kind": [node ids], ...}`, pretty-printed.
    #[must_use]
    pub fn nodes_json(&self) -> String {
        struct Nodes<'a>(&'a [KindSamples]);
        impl Serialize for Nodes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for k in self.0 {
                    m.serialize_entry(&k.kind, &k.node_ids)?;
                }
                m.end()
            }
        }
        let mut text = serde_json::to_string_pretty(&Nodes(&self.kinds)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Read the output of [`Samples::write_dir`].
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Array`], or [`Error::Model`] if `nodes.json` and
    /// `samples.npz` disagree.
    pub fn read_dir(dir: &Path) -> Result<Samples> {
        let nodes_path = dir.join(NODES_FILE);
        let text = std::fs::read_to_string(&nodes_path).map_err(|source| Error::Io {
            path: nodes_path.clone(),
            source,
        })?;
        let r = Reader::new(&nodes_path);
        let value = parse_strict(&text, &nodes_path)?;
        let map = r.map(&value, "")?;
        let samples_path = dir.join(SAMPLES_FILE);
        let mut arrays = read_npz(&samples_path)?;
        let mut kinds = Vec::new();
        let (mut n_chains, mut n_samples) = (0, 0);
        for (name, ids) in map {
            let node_ids = r.ids(ids, name)?;
            let states = arrays.remove(name).ok_or_else(|| Error::Array {
                path: samples_path.clone(),
                message: format!("array `{name}` (listed in {NODES_FILE}) is missing"),
            })?;
            if states.ndim() != 3 || states.shape()[2] != node_ids.len() {
                return Err(Error::Array {
                    path: samples_path.clone(),
                    message: format!(
                        "array `{name}` has shape {:?}, expected [chains, samples, {}]",
                        states.shape(),
                        node_ids.len()
                    ),
                });
            }
            n_chains = states.shape()[0];
            n_samples = states.shape()[1];
            kinds.push(KindSamples {
                kind: name.clone(),
                node_ids,
                states,
            });
        }
        if let Some(extra) = arrays.keys().next() {
            return Err(Error::Array {
                path: samples_path,
                message: format!("array `{extra}` is not listed in {NODES_FILE}"),
            });
        }
        Ok(Samples {
            n_chains,
            n_samples,
            kinds,
        })
    }

    /// The sampled values per draw: `values[d][v]` for draw `d` (chain-major: chain 0's
    /// samples first) and sampled node `v` in ascending node id, with spins as 1 (+1) / 0
    /// (−1) and categoricals as their category. This is the order of
    /// [`Model::exact_distribution`](crate::io::Model::exact_distribution)'s variables.
    #[must_use]
    pub fn values(&self) -> Vec<Vec<usize>> {
        let mut columns: Vec<(usize, usize, usize)> = self
            .kinds
            .iter()
            .enumerate()
            .flat_map(|(k, ks)| {
                ks.node_ids
                    .iter()
                    .enumerate()
                    .map(move |(j, &id)| (id, k, j))
            })
            .collect();
        columns.sort_unstable();
        let value = |t: &Tensor, c: usize, s: usize, j: usize| -> usize {
            match t {
                Tensor::Bool(a) => usize::from(a[[c, s, j]]),
                Tensor::U8(a) => usize::from(a[[c, s, j]]),
                _ => 0,
            }
        };
        let mut out = Vec::with_capacity(self.n_chains * self.n_samples);
        for c in 0..self.n_chains {
            for s in 0..self.n_samples {
                out.push(
                    columns
                        .iter()
                        .map(|&(_, k, j)| value(&self.kinds[k].states, c, s, j))
                        .collect(),
                );
            }
        }
        out
    }
}
