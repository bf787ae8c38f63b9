//! Samplers against exact enumeration: every kind of discrete model, block decomposition
//! and clamping pattern is sampled through the public API and its empirical joint
//! distribution compared with the enumerated Boltzmann distribution
//! (`common::assert_matches_exact`). Negative controls show that the comparison fails for
//! a wrong model, a wrong conditional and an invalid (interacting) block.
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn, arr1};
use rand::RngExt;
use thrml::exact::{DiscreteVar, ExactDistribution, sampled_values};
use thrml::graph::{Adjacency, check_colouring, colour_classes, dsatur_colouring, grid_edges};
use thrml::*;

type Factors = Vec<Arc<dyn EBMFactor>>;

fn block(nodes: &[Node]) -> Block {
    Block::new(nodes.to_vec()).unwrap()
}

/// Deterministic pseudo-random weights, uniform in `[-scale, scale]`.
fn weights(shape: &[usize], seed: u64, scale: f32) -> ArrayD<f32> {
    let mut rng = Key::new(seed).chain_rngs(1).pop().unwrap();
    ArrayD::from_shape_fn(IxDyn(shape), |_| scale * (2.0 * rng.random::<f32>() - 1.0))
}

/// A chain-length schedule and chain count.
#[derive(Clone, Copy)]
struct Run {
    chains: usize,
    warmup: usize,
    samples: usize,
    steps: usize,
    seed: u64,
}

const RUN: Run = Run {
    chains: 200,
    warmup: 30,
    samples: 500,
    steps: 3,
    seed: 1,
};

impl Run {
    fn schedule(&self) -> SamplingSchedule {
        SamplingSchedule::new(self.warmup, self.samples, self.steps).unwrap()
    }
}

/// A discrete model: free variables, clamped variables with their values, and factors.
struct Model {
    free: Vec<DiscreteVar>,
    clamped: Vec<(DiscreteVar, usize)>,
    factors: Factors,
    node_shape_dtypes: NodeShapeDtypes,
}

impl Model {
    fn new(free: Vec<DiscreteVar>, clamped: Vec<(DiscreteVar, usize)>, factors: Factors) -> Self {
        Model {
            free,
            clamped,
            factors,
            node_shape_dtypes: default_node_shape_dtypes(),
        }
    }

    fn ebm(&self) -> FactorizedEBM {
        FactorizedEBM::with_node_shape_dtypes(self.factors.clone(), self.node_shape_dtypes.clone())
    }

    fn exact(&self) -> ExactDistribution {
        ExactDistribution::new(&self.ebm(), &self.free, &self.clamped).unwrap()
    }

    fn var(&self, n: Node) -> DiscreteVar {
        self.free
            .iter()
            .copied()
            .chain(self.clamped.iter().map(|c| c.0))
            .find(|v| v.node() == n)
            .unwrap()
    }

    /// Split `nodes` into blocks of one kind and one number of values.
    fn split_by_kind(&self, nodes: &[Node]) -> SuperBlock {
        let mut groups: BTreeMap<(NodeKind, usize), Vec<Node>> = BTreeMap::new();
        for &n in nodes {
            groups
                .entry((n.kind(), self.var(n).n_values()))
                .or_default()
                .push(n);
        }
        SuperBlock(groups.into_values().map(|g| block(&g)).collect())
    }

    /// The "auto" blocks: colour the interaction graph of the free nodes (two nodes are
    /// adjacent when they share a factor instance) with DSatur; each colour is a superblock
    /// holding one block per node kind.
    fn auto_superblocks(&self) -> Vec<SuperBlock> {
        let nodes: Vec<Node> = self.free.iter().map(|v| v.node()).collect();
        let index = |n: Node| nodes.iter().position(|&m| m == n);
        let mut cliques = Vec::new();
        for f in &self.factors {
            let groups = f.node_groups();
            for b in 0..groups[0].len() {
                cliques.push(
                    groups
                        .iter()
                        .filter_map(|g| index(g[b]))
                        .collect::<Vec<_>>(),
                );
            }
        }
        let adj = Adjacency::from_cliques(nodes.len(), &cliques).unwrap();
        let colours = dsatur_colouring(&adj);
        check_colouring(&adj, &colours).unwrap();
        colour_classes(&colours)
            .into_iter()
            .map(|class| self.split_by_kind(&class.iter().map(|&i| nodes[i]).collect::<Vec<_>>()))
            .collect()
    }

    /// One block per free node, in order.
    fn single_node_superblocks(&self) -> Vec<SuperBlock> {
        self.free
            .iter()
            .map(|v| SuperBlock::from(block(&[v.node()])))
            .collect()
    }

    fn clamped_blocks(&self) -> Vec<Block> {
        self.clamped
            .iter()
            .map(|(v, _)| block(&[v.node()]))
            .collect()
    }

    /// Clamped states without a chain axis (shared by every chain).
    fn clamp_state(&self) -> Vec<State> {
        self.clamped
            .iter()
            .map(|&(v, x)| match v {
                DiscreteVar::Spin(_) => vec![Tensor::from(arr1(&[x == 1]).into_dyn())],
                DiscreteVar::Categorical(..) => {
                    vec![Tensor::from(arr1(&[u8::try_from(x).unwrap()]).into_dyn())]
                }
            })
            .collect()
    }

    fn sampler(&self, b: &Block) -> Arc<dyn AbstractConditionalSampler> {
        match self.var(b[0]) {
            DiscreteVar::Spin(_) => Arc::new(SpinGibbsConditional),
            DiscreteVar::Categorical(_, k) => Arc::new(CategoricalGibbsConditional::new(k)),
        }
    }

    fn program(&self, superblocks: Vec<SuperBlock>) -> BlockSamplingProgram {
        let spec = BlockGibbsSpec::new(superblocks, self.clamped_blocks(), &self.node_shape_dtypes)
            .unwrap();
        let samplers = spec.free_blocks.iter().map(|b| self.sampler(b)).collect();
        FactorSamplingProgram::new(spec, samplers, &self.factors, vec![])
            .unwrap()
            .into_inner()
    }

    fn random_init(&self, key: Key, blocks: &[Block], chains: usize) -> Vec<State> {
        blocks
            .iter()
            .zip(key.split(blocks.len()))
            .map(|(b, k)| match self.var(b[0]) {
                DiscreteVar::Spin(_) => common::random_spins(k, chains, b.len()),
                DiscreteVar::Categorical(_, n) => common::random_categories(k, chains, b.len(), n),
            })
            .collect()
    }

    /// Sample the free variables with `program` and return `values[draw][var]`.
    fn sample(&self, program: &BlockSamplingProgram, run: Run) -> Vec<Vec<usize>> {
        let free = &program.gibbs_spec.free_blocks;
        let key = Key::new(run.seed);
        let init = self.random_init(key.fold_in(0), free, run.chains);
        let samples = sample_states(
            key.fold_in(1),
            program,
            &run.schedule(),
            &init,
            &self.clamp_state(),
            free,
        )
        .unwrap();
        sampled_values(&self.free, free, &samples).unwrap()
    }

    /// Sample with these superblocks, through the fused kernels and through the generic
    /// path, and assert that both match enumeration.
    fn check(&self, label: &str, superblocks: Vec<SuperBlock>, run: Run) -> common::Comparison {
        let program = self.program(superblocks);
        assert!(
            program.fused_blocks().iter().all(|&f| f),
            "{label}: every built-in block runs on the fused kernels"
        );
        let exact = self.exact();
        let values = self.sample(&program, run);
        assert_eq!(values.len(), run.chains * run.samples);
        let fused = common::assert_matches_exact(&format!("{label} [fused]"), &exact, &values);
        program.set_fused_kernels(false);
        assert!(program.fused_blocks().iter().all(|&f| !f));
        let values = self.sample(&program, run);
        common::assert_matches_exact(&format!("{label} [generic]"), &exact, &values);
        fused
    }
}

fn spins(nodes: &[Node]) -> Vec<DiscreteVar> {
    nodes.iter().map(|&n| DiscreteVar::Spin(n)).collect()
}

fn categoricals(nodes: &[Node], k: usize) -> Vec<DiscreteVar> {
    nodes
        .iter()
        .map(|&n| DiscreteVar::Categorical(n, k))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------

/// Five spins with three 3-spin factors, two pairwise factors and biases.
fn three_spin_model() -> Model {
    let s = Node::many(NodeKind::SPIN, 5);
    let triples = SpinEBMFactor::new(
        vec![
            block(&[s[0], s[1], s[2]]),
            block(&[s[1], s[2], s[3]]),
            block(&[s[2], s[3], s[4]]),
        ],
        arr1(&[0.6f32, -0.5, 0.4]).into_dyn(),
    )
    .unwrap();
    let pairs = SpinEBMFactor::new(
        vec![block(&[s[0], s[1]]), block(&[s[4], s[3]])],
        arr1(&[0.5f32, -0.7]).into_dyn(),
    )
    .unwrap();
    let biases = SpinEBMFactor::new(
        vec![block(&s)],
        arr1(&[0.2f32, -0.1, 0.3, 0.0, -0.25]).into_dyn(),
    )
    .unwrap();
    Model::new(
        spins(&s),
        vec![],
        vec![Arc::new(triples), Arc::new(pairs), Arc::new(biases)],
    )
}

/// Spins `s0..s2`, categoricals `c0, c1` (K = 3) and `c2` (K = 2), coupled by discrete
/// factors of orders 1 to 3, square and non-square.
fn mixed_model() -> Model {
    let s = Node::many(NodeKind::SPIN, 3);
    let c = Node::many(NodeKind::CATEGORICAL, 3);
    let factors: Factors = vec![
        // spin × cat, batched over two instances: (s0, c0), (s1, c1).
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[0], s[1]])],
                vec![block(&[c[0], c[1]])],
                weights(&[2, 3], 11, 0.8),
            )
            .unwrap(),
        ),
        // spin × cat with K = 2.
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[2]])],
                vec![block(&[c[2]])],
                weights(&[1, 2], 12, 0.8),
            )
            .unwrap(),
        ),
        // spin × spin × cat.
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[0]]), block(&[s[2]])],
                vec![block(&[c[1]])],
                weights(&[1, 3], 13, 0.7),
            )
            .unwrap(),
        ),
        // spin × cat × cat, square.
        Arc::new(
            SquareDiscreteEBMFactor::new(
                vec![block(&[s[1]])],
                vec![block(&[c[0]]), block(&[c[1]])],
                weights(&[1, 3, 3], 14, 0.7),
            )
            .unwrap(),
        ),
        // spin × cat × cat, non-square (3 × 2).
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[0]])],
                vec![block(&[c[1]]), block(&[c[2]])],
                weights(&[1, 3, 2], 15, 0.7),
            )
            .unwrap(),
        ),
        // cat × cat, non-square (3 × 2).
        Arc::new(
            CategoricalEBMFactor::new(
                vec![block(&[c[0]]), block(&[c[2]])],
                weights(&[1, 3, 2], 16, 0.6),
            )
            .unwrap(),
        ),
        // spin × spin.
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&[s[1]]), block(&[s[2]])],
                arr1(&[-0.5f32]).into_dyn(),
            )
            .unwrap(),
        ),
        // Biases.
        Arc::new(SpinEBMFactor::new(vec![block(&s)], weights(&[3], 17, 0.4)).unwrap()),
        Arc::new(
            CategoricalEBMFactor::new(vec![block(&c[..2])], weights(&[2, 3], 18, 0.5)).unwrap(),
        ),
        Arc::new(
            CategoricalEBMFactor::new(vec![block(&c[2..])], weights(&[1, 2], 19, 0.5)).unwrap(),
        ),
    ];
    let mut free = spins(&s);
    free.extend(categoricals(&c[..2], 3));
    free.push(DiscreteVar::Categorical(c[2], 2));
    Model::new(free, vec![], factors)
}

/// A 3 × 3 open-grid Ising model at β = 0.8.
fn ising_grid() -> (IsingEBM, Vec<Node>, Vec<(usize, usize)>) {
    let s = Node::many(NodeKind::SPIN, 9);
    let grid = grid_edges(3, 3, false);
    let edges = grid.iter().map(|&(a, b)| (s[a], s[b])).collect();
    let j: Vec<f32> = weights(&[grid.len()], 21, 0.9).iter().copied().collect();
    let h: Vec<f32> = weights(&[9], 22, 0.4).iter().copied().collect();
    (IsingEBM::new(s.clone(), edges, h, j, 0.8).unwrap(), s, grid)
}

fn ising_program_blocks(s: &[Node], grid: &[(usize, usize)]) -> Vec<Block> {
    let adj = Adjacency::from_edges(s.len(), grid.iter().copied()).unwrap();
    let colours = dsatur_colouring(&adj);
    colour_classes(&colours)
        .iter()
        .map(|class| block(&class.iter().map(|&i| s[i]).collect::<Vec<_>>()))
        .collect()
}

fn ising_samples(
    ebm: &IsingEBM,
    blocks: &[Block],
    key: Key,
    chains: usize,
    schedule: &SamplingSchedule,
) -> Vec<State> {
    let program = IsingSamplingProgram::new(ebm, blocks.to_vec(), vec![]).unwrap();
    let init: Vec<State> = hinton_init(key.fold_in(0), ebm, blocks, &[chains])
        .unwrap()
        .into_iter()
        .map(|a| vec![Tensor::from(a)])
        .collect();
    sample_states(key.fold_in(1), &program, schedule, &init, &[], blocks).unwrap()
}

// ---------------------------------------------------------------------------------------
// Models against enumeration
// ---------------------------------------------------------------------------------------

#[test]
fn spin_chain_with_clamped_end() {
    let s = Node::many(NodeKind::SPIN, 6);
    let edges = (0..5).map(|i| (s[i], s[i + 1])).collect();
    let ebm = IsingEBM::new(
        s.clone(),
        edges,
        vec![0.2, -0.3, 0.1, 0.4, -0.1, 0.25],
        vec![0.9, -0.6, 0.7, 0.5, -0.8],
        1.0,
    )
    .unwrap();
    let free = vec![block(&[s[1], s[3], s[5]]), block(&[s[2], s[4]])];
    let clamped = vec![block(&[s[0]])];
    let program = IsingSamplingProgram::new(&ebm, free.clone(), clamped.clone()).unwrap();
    let vars = spins(&s[1..]);
    let chains = 200;
    let schedule = SamplingSchedule::new(20, 500, 2).unwrap();
    // s0 = +1 shared by all chains ([nodes]), then s0 = −1 given per chain ([chains, nodes]).
    let clamps = [
        (1, vec![Tensor::from(arr1(&[true]).into_dyn())]),
        (
            0,
            vec![Tensor::from(
                Array2::from_elem((chains, 1), false).into_dyn(),
            )],
        ),
    ];
    let mut observed = free.clone();
    observed.extend(clamped);
    for (value, clamp) in clamps {
        let exact =
            ExactDistribution::new(&ebm, &vars, &[(DiscreteVar::Spin(s[0]), value)]).unwrap();
        let init: Vec<State> = hinton_init(Key::new(value as u64), &ebm, &free, &[chains])
            .unwrap()
            .into_iter()
            .map(|a| vec![Tensor::from(a)])
            .collect();
        let samples = sample_states(
            Key::new(10 + value as u64),
            &program,
            &schedule,
            &init,
            &[clamp],
            &observed,
        )
        .unwrap();
        // The clamped node never moves.
        let clamped_values = samples[2][0].as_slice::<bool>().unwrap();
        assert_eq!(clamped_values.len(), chains * 500);
        assert!(clamped_values.iter().all(|&x| x == (value == 1)));
        let values = sampled_values(&vars, &observed, &samples).unwrap();
        common::assert_matches_exact(
            &format!("spin chain, s0 clamped to {value}"),
            &exact,
            &values,
        );
    }
}

#[test]
fn three_spin_factors_with_pairs_and_biases() {
    let model = three_spin_model();
    let blocks = model.auto_superblocks();
    assert!(blocks.len() >= 3, "a 3-spin factor needs three colours");
    model.check("3-spin factors, auto blocks", blocks, RUN);
}

/// A ring of 6 categoricals of `k` categories with pair tables `couplings` (`[6, k, k]`,
/// edge `i` from node `i` to node `i + 1`) and biases from `bias_seed`, and its even and
/// odd blocks.
fn potts_ring_model(k: usize, couplings: ArrayD<f32>, bias_seed: u64) -> (Model, Vec<SuperBlock>) {
    let c = Node::many(NodeKind::CATEGORICAL, 6);
    let next: Vec<Node> = (0..6).map(|i| c[(i + 1) % 6]).collect();
    let ring = SquareCategoricalEBMFactor::new(vec![block(&c), block(&next)], couplings).unwrap();
    let bias =
        CategoricalEBMFactor::new(vec![block(&c)], weights(&[6, k], bias_seed, 0.5)).unwrap();
    let model = Model::new(
        categoricals(&c, k),
        vec![],
        vec![Arc::new(ring), Arc::new(bias)],
    );
    let even_odd = vec![
        SuperBlock::from(block(&[c[0], c[2], c[4]])),
        SuperBlock::from(block(&[c[1], c[3], c[5]])),
    ];
    (model, even_odd)
}

#[test]
fn potts_ring() {
    let k = 3;
    // Identity-like couplings J_b · I plus a small perturbation.
    let j = [0.9f32, -0.6, 0.8, 0.5, -0.7, 1.0];
    let perturbation = weights(&[6, k, k], 31, 0.15);
    let couplings = ArrayD::from_shape_fn(IxDyn(&[6, k, k]), |i| {
        (if i[1] == i[2] { j[i[0]] } else { 0.0 }) + perturbation[&i]
    });
    let (model, even_odd) = potts_ring_model(k, couplings, 32);
    model.check("Potts ring K=3", even_odd, RUN);
}

#[test]
fn spins_coupled_to_categoricals() {
    // As in the benchmark's mixed workload: a spin ring whose spins each couple to one
    // categorical (pairwise spin × categorical rows), so that the spin blocks run on the
    // spin kernel with those couplings.
    let s = Node::many(NodeKind::SPIN, 4);
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let k = 3;
    let next: Vec<Node> = (0..4).map(|i| s[(i + 1) % 4]).collect();
    let owner = [c[0], c[0], c[1], c[1]];
    let factors: Factors = vec![
        Arc::new(
            SpinEBMFactor::new(vec![block(&s), block(&next)], weights(&[4], 51, 0.7)).unwrap(),
        ),
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&s)],
                vec![block(&owner)],
                weights(&[4, k], 52, 0.9),
            )
            .unwrap(),
        ),
        Arc::new(SpinEBMFactor::new(vec![block(&s)], weights(&[4], 53, 0.4)).unwrap()),
        Arc::new(CategoricalEBMFactor::new(vec![block(&c)], weights(&[2, k], 54, 0.5)).unwrap()),
    ];
    let mut free = spins(&s);
    free.extend(categoricals(&c, k));
    let model = Model::new(free, vec![], factors);
    let blocks = vec![
        SuperBlock::from(block(&[s[0], s[2]])),
        SuperBlock::from(block(&[s[1], s[3]])),
        SuperBlock::from(block(&c)),
    ];
    model.check("spins coupled to categoricals", blocks, RUN);
}

#[test]
fn potts_ring_in_one_chain() {
    // One chain draws its categoricals 16 positions at a time (the lanes of one batch),
    // here 3 of them per block: per-edge tables, and one symmetric table shared by every
    // edge (a Potts model's case).
    let k = 3;
    let perturbation = weights(&[6, k, k], 35, 0.2);
    let one = weights(&[1, k, k], 36, 0.8);
    let run = Run {
        chains: 1,
        warmup: 50,
        samples: 100_000,
        steps: 4,
        seed: 3,
    };
    for shared in [false, true] {
        let couplings = ArrayD::from_shape_fn(IxDyn(&[6, k, k]), |i| {
            // Symmetric, so that both directions of every edge name one table.
            let (a, b) = (i[1].min(i[2]), i[1].max(i[2]));
            let base = if a == b { 0.7 } else { 0.0 } + one[[0, a, b]];
            if shared {
                base
            } else {
                base + perturbation[&i]
            }
        });
        let (model, even_odd) = potts_ring_model(k, couplings, 37);
        model.check(
            &format!("Potts ring K=3, one chain, shared table {shared}"),
            even_odd,
            run,
        );
    }
}

#[test]
fn categorical_triplet_with_clamped_neighbour() {
    let k = 3;
    let c = Node::many(NodeKind::CATEGORICAL, 4);
    let triplet = SquareCategoricalEBMFactor::new(
        vec![block(&[c[0]]), block(&[c[1]]), block(&[c[2]])],
        weights(&[1, k, k, k], 41, 1.0),
    )
    .unwrap();
    // c3 is clamped; it acts on c1 through a non-symmetric pairwise factor.
    let pair = CategoricalEBMFactor::new(
        vec![block(&[c[3]]), block(&[c[1]])],
        weights(&[1, k, k], 42, 1.0),
    )
    .unwrap();
    let bias = CategoricalEBMFactor::new(vec![block(&c[..3])], weights(&[3, k], 43, 0.5)).unwrap();
    for clamp_value in [0, 2] {
        let model = Model::new(
            categoricals(&c[..3], k),
            vec![(DiscreteVar::Categorical(c[3], k), clamp_value)],
            vec![
                Arc::new(triplet.clone()),
                Arc::new(pair.clone()),
                Arc::new(bias.clone()),
            ],
        );
        let blocks = model.auto_superblocks();
        assert_eq!(blocks.len(), 3);
        model.check(
            &format!("categorical triplet, c3 clamped to {clamp_value}"),
            blocks,
            RUN,
        );
    }
}

#[test]
fn mixed_spin_categorical_factors() {
    let model = mixed_model();
    model.check(
        "mixed spin/categorical, single-node blocks",
        model.single_node_superblocks(),
        RUN,
    );
}

#[test]
fn ising_grid_with_colouring_blocks() {
    let (ebm, s, grid) = ising_grid();
    let blocks = ising_program_blocks(&s, &grid);
    assert_eq!(blocks.len(), 2, "an open grid is bipartite");
    let samples = ising_samples(
        &ebm,
        &blocks,
        Key::new(3),
        200,
        &SamplingSchedule::new(30, 500, 3).unwrap(),
    );
    let vars = spins(&s);
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let values = sampled_values(&vars, &blocks, &samples).unwrap();
    common::assert_matches_exact("3x3 Ising grid, auto blocks", &exact, &values);
}

#[test]
fn superblocks_mixing_kinds() {
    // A 4-cycle s0 – c0 – c1 – s1 – s0: {s0, c1} and {c0, s1} are independent sets, each
    // sampled as one superblock of a spin block and a categorical block.
    let s = Node::many(NodeKind::SPIN, 2);
    let c = Node::many(NodeKind::CATEGORICAL, 2);
    let factors: Factors = vec![
        Arc::new(
            DiscreteEBMFactor::new(
                vec![block(&[s[0], s[1]])],
                vec![block(&[c[0], c[1]])],
                weights(&[2, 3], 51, 1.0),
            )
            .unwrap(),
        ),
        Arc::new(
            CategoricalEBMFactor::new(
                vec![block(&[c[0]]), block(&[c[1]])],
                weights(&[1, 3, 3], 52, 1.0),
            )
            .unwrap(),
        ),
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&[s[0]]), block(&[s[1]])],
                arr1(&[0.7f32]).into_dyn(),
            )
            .unwrap(),
        ),
        Arc::new(SpinEBMFactor::new(vec![block(&s)], arr1(&[0.3f32, -0.2]).into_dyn()).unwrap()),
    ];
    let mut free = spins(&s);
    free.extend(categoricals(&c, 3));
    let model = Model::new(free, vec![], factors);
    let superblocks = vec![
        SuperBlock(vec![block(&[s[0]]), block(&[c[1]])]),
        SuperBlock(vec![block(&[c[0]]), block(&[s[1]])]),
    ];
    model.check("superblocks [spin, cat]", superblocks, RUN);
}

#[test]
fn two_spin_kinds_share_a_slot() {
    let spin_b = NodeKind::new("spin_b");
    let mut sd = default_node_shape_dtypes();
    sd.insert(spin_b, StateLayout::scalar(DType::Bool));
    let a = Node::many(NodeKind::SPIN, 3);
    let b = Node::many(spin_b, 3);
    let factors: Factors = vec![
        // Cross-kind couplings a_i – b_i (spin groups of different kinds).
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&a), block(&b)],
                arr1(&[0.8f32, -0.6, 0.5]).into_dyn(),
            )
            .unwrap(),
        ),
        // Chains within each kind.
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&[a[0], a[1]]), block(&[a[1], a[2]])],
                arr1(&[0.7f32, -0.4]).into_dyn(),
            )
            .unwrap(),
        ),
        Arc::new(
            SpinEBMFactor::new(
                vec![block(&[b[0], b[1]]), block(&[b[1], b[2]])],
                arr1(&[-0.9f32, 0.6]).into_dyn(),
            )
            .unwrap(),
        ),
        Arc::new(SpinEBMFactor::new(vec![block(&a)], weights(&[3], 61, 0.4)).unwrap()),
        Arc::new(SpinEBMFactor::new(vec![block(&b)], weights(&[3], 62, 0.4)).unwrap()),
    ];
    let mut free = spins(&a);
    free.extend(spins(&b));
    let mut model = Model::new(free, vec![], factors);
    model.node_shape_dtypes = sd;
    // Colour (index + kind) mod 2, one block per kind in each superblock.
    let superblocks = vec![
        SuperBlock(vec![block(&[a[0], a[2]]), block(&[b[1]])]),
        SuperBlock(vec![block(&[a[1]]), block(&[b[0], b[2]])]),
    ];
    let program = model.program(superblocks.clone());
    assert_eq!(
        program.gibbs_spec.global_sd_order.len(),
        1,
        "both spin kinds live in one global slot"
    );
    assert_eq!(program.gibbs_spec.slot_sizes, vec![6]);
    model.check("two spin kinds in one slot", superblocks, RUN);
}

#[test]
fn block_decompositions_agree() {
    let run = Run {
        samples: 400,
        ..RUN
    };
    let model = three_spin_model();
    let mut reversed = model.auto_superblocks();
    reversed.reverse();
    for (label, blocks) in [
        (
            "3-spin, single-node blocks",
            model.single_node_superblocks(),
        ),
        ("3-spin, colouring blocks", model.auto_superblocks()),
        ("3-spin, colouring blocks reversed", reversed),
    ] {
        model.check(label, blocks, run);
    }
    let model = mixed_model();
    let auto = model.auto_superblocks();
    assert!(
        auto.iter().any(|sb| sb.0.len() > 1),
        "some colour holds spins and categoricals"
    );
    model.check("mixed, colouring superblocks", auto, run);
}

// ---------------------------------------------------------------------------------------
// Random streams
// ---------------------------------------------------------------------------------------

#[test]
fn same_key_same_samples_different_key_different_samples() {
    let (ebm, s, grid) = ising_grid();
    let blocks = ising_program_blocks(&s, &grid);
    let schedule = SamplingSchedule::new(5, 20, 1).unwrap();
    let a = ising_samples(&ebm, &blocks, Key::new(7), 8, &schedule);
    let b = ising_samples(&ebm, &blocks, Key::new(7), 8, &schedule);
    let c = ising_samples(&ebm, &blocks, Key::new(8), 8, &schedule);
    assert_eq!(a, b);
    assert_ne!(a, c);

    let model = mixed_model();
    let program = model.program(model.auto_superblocks());
    let run = Run {
        chains: 8,
        warmup: 5,
        samples: 20,
        steps: 1,
        seed: 9,
    };
    assert_eq!(model.sample(&program, run), model.sample(&program, run));
    assert_ne!(
        model.sample(&program, run),
        model.sample(&program, Run { seed: 10, ..run })
    );
}

#[test]
fn chains_draw_independent_streams() {
    // Every chain starts from the same state; their trajectories must still differ, and a
    // chain's trajectory must not depend on how many chains run beside it.
    let (ebm, s, grid) = ising_grid();
    let blocks = ising_program_blocks(&s, &grid);
    let program = IsingSamplingProgram::new(&ebm, blocks.clone(), vec![]).unwrap();
    let schedule = SamplingSchedule::new(0, 50, 1).unwrap();
    let run = |chains: usize| {
        let init =
            make_empty_block_state(&blocks, &default_node_shape_dtypes(), Some(&[chains])).unwrap();
        sample_states(Key::new(4), &program, &schedule, &init, &[], &blocks).unwrap()
    };
    let four = run(4);
    let eight = run(8);
    for (b, states) in four.iter().enumerate() {
        let x = states[0].view::<bool>().unwrap();
        let (n_samples, n) = (x.shape()[1], x.shape()[2]);
        let chain = |c: usize| x.slice(ndarray::s![c, .., ..]).to_owned();
        for c1 in 0..4 {
            for c2 in c1 + 1..4 {
                assert_ne!(
                    chain(c1),
                    chain(c2),
                    "block {b}: chains {c1} and {c2} coincide"
                );
            }
        }
        let y = eight[b][0].view::<bool>().unwrap();
        assert_eq!(y.shape(), &[8, n_samples, n]);
        assert_eq!(x, y.slice(ndarray::s![..4, .., ..]).into_dyn(), "block {b}");
    }
}

/// A user-defined spin sampler (the extension pattern of `SpinGibbsConditional`), unknown
/// to the fused engine, so its blocks take the generic path. It draws `P(+1) = σ(2sγ)`:
/// exact for `field_scale` s = 1; s = ½ is a classic bug (`σ(γ)` instead of `σ(2γ)`) that
/// the checker must reject.
#[derive(Debug)]
struct UserSpinSampler {
    field_scale: f32,
}

impl AbstractParametricConditionalSampler for UserSpinSampler {
    type Parameters = Array2<f32>;

    fn compute_parameters(
        &self,
        rngs: &mut [ChainRng],
        inputs: &SamplerInputs<'_>,
        state: &SamplerState,
    ) -> Array2<f32> {
        SpinGibbsConditional.compute_parameters(rngs, inputs, state) * self.field_scale
    }

    fn sample_given_parameters(
        &self,
        rngs: &mut [ChainRng],
        gamma: &Array2<f32>,
        state: &mut SamplerState,
        out: &mut State,
    ) {
        SpinGibbsConditional.sample_given_parameters(rngs, gamma, state, out);
    }
}

#[test]
fn fused_and_generic_blocks_in_one_program() {
    // The mixed model with one spin per block: spin 1 is drawn by a user sampler (generic
    // path), everything else by the built-in samplers (fused), in every superblock pattern:
    // a generic block alone, and next to fused blocks in one superblock.
    let model = mixed_model();
    let s: Vec<Node> = model.free[..3].iter().map(|v| v.node()).collect();
    let c: Vec<Node> = model.free[3..].iter().map(|v| v.node()).collect();
    let layouts: [Vec<SuperBlock>; 2] = [
        [s[1], s[0], s[2], c[0], c[1], c[2]]
            .iter()
            .map(|&n| SuperBlock(vec![block(&[n])]))
            .collect(),
        vec![
            SuperBlock(vec![block(&[s[0]])]),
            SuperBlock(vec![block(&[s[1]]), block(&[c[2]])]),
            SuperBlock(vec![block(&[s[2]])]),
            SuperBlock(vec![block(&[c[0]])]),
            SuperBlock(vec![block(&[c[1]])]),
        ],
    ];
    for (i, superblocks) in layouts.into_iter().enumerate() {
        let spec = BlockGibbsSpec::new(superblocks, vec![], &model.node_shape_dtypes).unwrap();
        let samplers: Vec<Arc<dyn AbstractConditionalSampler>> = spec
            .free_blocks
            .iter()
            .map(|b| -> Arc<dyn AbstractConditionalSampler> {
                if b[0] == s[1] {
                    Arc::new(UserSpinSampler { field_scale: 1.0 })
                } else {
                    model.sampler(b)
                }
            })
            .collect();
        let program = FactorSamplingProgram::new(spec, samplers, &model.factors, vec![])
            .unwrap()
            .into_inner();
        let fused = program.fused_blocks();
        let generic_block = program
            .gibbs_spec
            .free_blocks
            .iter()
            .position(|b| b[0] == s[1])
            .unwrap();
        for (b, &f) in fused.iter().enumerate() {
            assert_eq!(f, b != generic_block, "layout {i}, block {b}");
        }
        let values = model.sample(&program, RUN);
        common::assert_matches_exact(
            &format!("mixed model, fused and generic blocks, layout {i}"),
            &model.exact(),
            &values,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Negative controls: the checker must reject wrong samplers
// ---------------------------------------------------------------------------------------

fn assert_fails(label: &str, c: &common::Comparison) {
    eprintln!(
        "{label} (must fail): n = {}, TV ratio {:.2}, p = {:.3e}",
        c.n,
        c.tv_ratio(),
        c.p_value
    );
    assert!(
        c.tv > common::TV_FACTOR * c.tv_noise && c.p_value < common::MIN_P_VALUE,
        "{label}: the checker accepted a wrong sampler (TV ratio {:.2}, p = {:.3e})",
        c.tv_ratio(),
        c.p_value
    );
}

#[test]
fn checker_rejects_wrong_samplers() {
    let (ebm, s, grid) = ising_grid();
    let vars = spins(&s);
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let blocks = ising_program_blocks(&s, &grid);
    let schedule = SamplingSchedule::new(30, 500, 3).unwrap();

    // 1. The right sampler on a model with every weight scaled by 1.3.
    let scaled = IsingEBM::new(
        s.clone(),
        ebm.edges.clone(),
        ebm.biases.iter().map(|b| 1.3 * b).collect(),
        ebm.weights.iter().map(|w| 1.3 * w).collect(),
        ebm.beta,
    )
    .unwrap();
    let samples = ising_samples(&scaled, &blocks, Key::new(3), 200, &schedule);
    let values = sampled_values(&vars, &blocks, &samples).unwrap();
    assert_fails("weights x1.3", &common::compare_exact(&exact, &values));

    // 2. A conditional with the wrong field scale.
    let spec = BlockGibbsSpec::new(blocks.clone(), vec![], &default_node_shape_dtypes()).unwrap();
    let sampler: Arc<dyn AbstractConditionalSampler> =
        Arc::new(UserSpinSampler { field_scale: 0.5 });
    let program =
        FactorSamplingProgram::new(spec, vec![sampler.clone(), sampler], &ebm.factors(), vec![])
            .unwrap();
    let init: Vec<State> = blocks
        .iter()
        .map(|b| common::random_spins(Key::new(5), 200, b.len()))
        .collect();
    let samples = sample_states(Key::new(6), &program, &schedule, &init, &[], &blocks).unwrap();
    let values = sampled_values(&vars, &blocks, &samples).unwrap();
    assert_fails(
        "P(+1) = sigma(gamma)",
        &common::compare_exact(&exact, &values),
    );

    // 3. A ferromagnetic pair updated synchronously in one block: the program refuses it
    //    unless asked not to check, and then samples the wrong distribution.
    let pair = Node::many(NodeKind::SPIN, 2);
    let ebm = IsingEBM::new(
        pair.clone(),
        vec![(pair[0], pair[1])],
        vec![0.1, 0.0],
        vec![1.5],
        1.0,
    )
    .unwrap();
    let one_block = vec![block(&pair)];
    let err = IsingSamplingProgram::new(&ebm, one_block.clone(), vec![]).unwrap_err();
    assert!(matches!(err, Error::InteractingBlock { .. }), "{err}");
    let spec =
        BlockGibbsSpec::new(one_block.clone(), vec![], &default_node_shape_dtypes()).unwrap();
    let program = BlockSamplingProgram::new_allowing_interacting_superblocks(
        spec,
        vec![Arc::new(SpinGibbsConditional)],
        ebm.factors()
            .iter()
            .flat_map(|f| f.to_interaction_groups())
            .collect(),
    )
    .unwrap();
    let init = vec![common::random_spins(Key::new(7), 200, 2)];
    let samples = sample_states(Key::new(8), &program, &schedule, &init, &[], &one_block).unwrap();
    let vars = spins(&pair);
    let exact = ExactDistribution::new(&ebm, &vars, &[]).unwrap();
    let values = sampled_values(&vars, &one_block, &samples).unwrap();
    assert_fails("interacting block", &common::compare_exact(&exact, &values));
}

#[test]
fn checker_accepts_exact_counts_and_rejects_shifted_ones() {
    // The checker itself: expected counts pass, a 5% shift fails both tests.
    let p = [0.25, 0.25, 0.5];
    assert!(common::compare(&p, &[25_000, 25_000, 50_000]).passes());
    let bad = common::compare(&p, &[30_000, 20_000, 50_000]);
    assert!(!bad.passes());
    assert_fails("shifted counts", &bad);
}
