//! Undirected interaction graphs and vertex colourings.
//!
//! A proper vertex colouring assigns every node a colour such that no two
//! adjacent nodes share one; each colour class is then a set of mutually
//! non-interacting nodes that a block Gibbs sampler can update in parallel.
//! Fewer colours mean fewer sequential block updates per sweep.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::GraphError;

/// An undirected simple graph on the nodes `0..n_nodes`, stored in
/// compressed sparse row (CSR) form.
///
/// Every neighbour list is sorted ascending and free of duplicates; self-loops
/// are dropped on construction. Each undirected edge `{u, v}` appears in both
/// `neighbours(u)` and `neighbours(v)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjacency {
    /// `offsets[i]..offsets[i + 1]` is the slice of `targets` holding the
    /// neighbours of node `i`; `offsets.len() == n_nodes + 1`.
    offsets: Vec<usize>,
    /// Concatenated neighbour lists.
    targets: Vec<usize>,
}

impl Adjacency {
    /// Builds a graph on `n_nodes` nodes from undirected edges.
    ///
    /// Edges may be given in either orientation and may repeat; duplicates are
    /// merged and self-loops `(i, i)` are ignored.
    ///
    /// # Errors
    ///
    /// [`GraphError::EdgeOutOfRange`] naming the (zero-based) edge index and
    /// the node if an endpoint is `>= n_nodes`.
    ///
    /// # Example
    ///
    /// ```
    /// use thrml::graph::Adjacency;
    ///
    /// let adj = Adjacency::from_edges(4, [(0, 1), (1, 2), (2, 1), (3, 3)]).unwrap();
    /// assert_eq!(adj.n_edges(), 2);
    /// assert_eq!(adj.neighbours(1), &[0, 2]);
    /// assert_eq!(adj.degree(3), 0);
    /// assert!(Adjacency::from_edges(2, [(0, 2)]).is_err());
    /// ```
    pub fn from_edges(
        n_nodes: usize,
        edges: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Self, GraphError> {
        let mut pairs = Vec::new();
        for (edge, (u, v)) in edges.into_iter().enumerate() {
            for node in [u, v] {
                if node >= n_nodes {
                    return Err(GraphError::EdgeOutOfRange {
                        edge,
                        node,
                        n_nodes,
                    });
                }
            }
            if u != v {
                pairs.push((u, v));
            }
        }
        Ok(Self::from_valid_pairs(n_nodes, &pairs))
    }

    /// Builds a graph on `n_nodes` nodes in which every pair of distinct nodes
    /// that occur together in one clique is connected.
    ///
    /// This is how factor instances become interaction edges: each clique is
    /// the list of nodes one factor instance touches, and any two of them
    /// interact. Repeated nodes within a clique and repeated pairs across
    /// cliques are merged.
    ///
    /// # Errors
    ///
    /// [`GraphError::CliqueOutOfRange`] naming the (zero-based) clique index
    /// and the node if a node is `>= n_nodes`.
    ///
    /// # Example
    ///
    /// ```
    /// use thrml::graph::Adjacency;
    ///
    /// // One three-body factor on nodes 0, 1, 2 and a pairwise factor on 2, 3.
    /// let adj = Adjacency::from_cliques(4, [vec![0, 1, 2], vec![2, 3]]).unwrap();
    /// assert_eq!(adj.n_edges(), 4);
    /// assert_eq!(adj.neighbours(2), &[0, 1, 3]);
    /// ```
    pub fn from_cliques(
        n_nodes: usize,
        cliques: impl IntoIterator<Item = impl AsRef<[usize]>>,
    ) -> Result<Self, GraphError> {
        let mut pairs = Vec::new();
        for (clique_idx, clique) in cliques.into_iter().enumerate() {
            let clique = clique.as_ref();
            if let Some(&node) = clique.iter().find(|&&node| node >= n_nodes) {
                return Err(GraphError::CliqueOutOfRange {
                    clique: clique_idx,
                    node,
                    n_nodes,
                });
            }
            for (k, &u) in clique.iter().enumerate() {
                for &v in &clique[k + 1..] {
                    if u != v {
                        pairs.push((u, v));
                    }
                }
            }
        }
        Ok(Self::from_valid_pairs(n_nodes, &pairs))
    }

    /// Builds the CSR arrays from in-range, loop-free pairs (any orientation,
    /// duplicates allowed).
    fn from_valid_pairs(n_nodes: usize, pairs: &[(usize, usize)]) -> Self {
        // Count both orientations, then scatter.
        let mut counts = vec![0usize; n_nodes + 1];
        for &(u, v) in pairs {
            counts[u + 1] += 1;
            counts[v + 1] += 1;
        }
        for i in 0..n_nodes {
            counts[i + 1] += counts[i];
        }
        let mut cursor = counts.clone();
        let mut raw = vec![0usize; counts[n_nodes]];
        for &(u, v) in pairs {
            raw[cursor[u]] = v;
            cursor[u] += 1;
            raw[cursor[v]] = u;
            cursor[v] += 1;
        }
        // Sort and deduplicate each row, compacting into fresh arrays.
        let mut offsets = Vec::with_capacity(n_nodes + 1);
        let mut targets = Vec::with_capacity(raw.len());
        offsets.push(0);
        for i in 0..n_nodes {
            let row = &mut raw[counts[i]..counts[i + 1]];
            row.sort_unstable();
            let mut last = None;
            for &v in row.iter() {
                if last != Some(v) {
                    targets.push(v);
                    last = Some(v);
                }
            }
            offsets.push(targets.len());
        }
        targets.shrink_to_fit();
        Self { offsets, targets }
    }

    /// Number of nodes.
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of undirected edges.
    #[must_use]
    pub fn n_edges(&self) -> usize {
        self.targets.len() / 2
    }

    /// The neighbours of node `i`, sorted ascending.
    ///
    /// # Panics
    ///
    /// If `i >= self.n_nodes()`.
    #[must_use]
    pub fn neighbours(&self, i: usize) -> &[usize] {
        &self.targets[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Number of neighbours of node `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.n_nodes()`.
    #[must_use]
    pub fn degree(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// Largest degree of any node (0 for an empty graph).
    #[must_use]
    pub fn max_degree(&self) -> usize {
        (0..self.n_nodes())
            .map(|i| self.degree(i))
            .max()
            .unwrap_or(0)
    }

    /// Iterates over every undirected edge once, as `(u, v)` with `u < v`, in
    /// lexicographic order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.n_nodes()).flat_map(move |u| {
            self.neighbours(u)
                .iter()
                .filter(move |&&v| v > u)
                .map(move |&v| (u, v))
        })
    }
}

/// Colours nodes in index order, giving each the smallest colour not used by
/// an already coloured neighbour.
///
/// Runs in `O(n + m)`. Uses at most `max_degree + 1` colours; usually more
/// than [`dsatur_colouring`].
///
/// # Example
///
/// ```
/// use thrml::graph::{Adjacency, greedy_colouring};
///
/// let path = Adjacency::from_edges(3, [(0, 1), (1, 2)]).unwrap();
/// assert_eq!(greedy_colouring(&path), vec![0, 1, 0]);
/// ```
#[must_use]
pub fn greedy_colouring(adj: &Adjacency) -> Vec<usize> {
    let n = adj.n_nodes();
    let mut colours = vec![usize::MAX; n];
    // `mark[c] == i` means colour `c` is taken by a neighbour of node `i`.
    let mut mark = vec![usize::MAX; adj.max_degree() + 1];
    for i in 0..n {
        for &v in adj.neighbours(i) {
            let c = colours[v];
            if c < mark.len() {
                mark[c] = i;
            }
        }
        let colour = mark.iter().position(|&m| m != i).unwrap_or(mark.len());
        colours[i] = colour;
    }
    colours
}

/// The set of colours seen among a node's neighbours: a bitset for colours
/// below 64 (the common case) plus a hash set for any larger ones, so memory
/// stays `O(saturation)` per node.
#[derive(Debug, Default, Clone)]
struct ColourSet {
    low: u64,
    high: Option<HashSet<usize>>,
}

impl ColourSet {
    /// Inserts `c`; returns `true` if it was not present.
    fn insert(&mut self, c: usize) -> bool {
        if c < 64 {
            let bit = 1u64 << c;
            let fresh = self.low & bit == 0;
            self.low |= bit;
            fresh
        } else {
            self.high.get_or_insert_with(HashSet::new).insert(c)
        }
    }

    /// Smallest colour not in the set.
    fn smallest_absent(&self) -> usize {
        if self.low != u64::MAX {
            return self.low.trailing_ones() as usize;
        }
        let mut c = 64;
        if let Some(high) = &self.high {
            while high.contains(&c) {
                c += 1;
            }
        }
        c
    }
}

/// Colours the graph with the DSATUR heuristic of Brélaz (1979).
///
/// Repeatedly picks the uncoloured node with the highest *saturation* (the
/// number of distinct colours among its neighbours), breaking ties by the
/// highest degree and then the lowest node index, and gives it the smallest
/// colour absent from its neighbours. The result is deterministic.
///
/// Runs in `O((n + m) log n)`: a bucket queue over saturation levels, each
/// level a heap ordered by the static (degree, index) tie-break. Optimal on bipartite graphs
/// and typically needs fewer colours than [`greedy_colouring`].
///
/// # Example
///
/// ```
/// use thrml::graph::{Adjacency, check_colouring, dsatur_colouring, n_colours};
///
/// // A 5-cycle needs 3 colours.
/// let cycle = Adjacency::from_edges(5, (0..5).map(|i| (i, (i + 1) % 5))).unwrap();
/// let colours = dsatur_colouring(&cycle);
/// check_colouring(&cycle, &colours).unwrap();
/// assert_eq!(n_colours(&colours), 3);
/// ```
#[must_use]
pub fn dsatur_colouring(adj: &Adjacency) -> Vec<usize> {
    const UNCOLOURED: usize = usize::MAX;
    let n = adj.n_nodes();
    // The tie-break (degree descending, then index ascending) is static, so
    // fold it into a rank: `order[r]` is the node of rank `r`, and among equal
    // saturations the smallest rank wins.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (Reverse(adj.degree(i)), i));
    let mut rank = vec![0usize; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }

    let mut colours = vec![UNCOLOURED; n];
    let mut seen = vec![ColourSet::default(); n];
    let mut saturation = vec![0usize; n];
    // Bucket queue on saturation. Saturation-0 nodes are taken in rank order
    // by a cursor over `order`; each higher level is a min-heap of ranks with
    // lazy deletion (a node's saturation only grows, so stale entries are
    // skipped when popped). `top` bounds the highest non-empty level.
    let mut levels: Vec<BinaryHeap<Reverse<usize>>> = vec![BinaryHeap::new()];
    let mut top = 0;
    let mut cursor = 0;

    loop {
        let mut next = None;
        while top > 0 && next.is_none() {
            match levels[top].pop() {
                Some(Reverse(r)) => {
                    let i = order[r];
                    if colours[i] == UNCOLOURED && saturation[i] == top {
                        next = Some(i);
                    }
                }
                None => top -= 1,
            }
        }
        // With all higher levels empty, every uncoloured node has saturation
        // 0, and the first uncoloured node in rank order wins.
        let Some(i) = next.or_else(|| {
            while cursor < n && colours[order[cursor]] != UNCOLOURED {
                cursor += 1;
            }
            order.get(cursor).copied()
        }) else {
            break;
        };

        let colour = seen[i].smallest_absent();
        colours[i] = colour;
        for &v in adj.neighbours(i) {
            if colours[v] == UNCOLOURED && seen[v].insert(colour) {
                saturation[v] += 1;
                let s = saturation[v];
                if s == levels.len() {
                    levels.push(BinaryHeap::new());
                }
                levels[s].push(Reverse(rank[v]));
                top = top.max(s);
            }
        }
    }
    colours
}

/// Number of colours used: one more than the largest colour, or 0 for an
/// empty colouring.
///
/// ```
/// assert_eq!(thrml::graph::n_colours(&[0, 2, 1, 0]), 3);
/// assert_eq!(thrml::graph::n_colours(&[]), 0);
/// ```
#[must_use]
pub fn n_colours(colours: &[usize]) -> usize {
    colours.iter().max().map_or(0, |&c| c + 1)
}

/// Groups node ids by colour: entry `c` lists the nodes of colour `c` in
/// ascending order. Has [`n_colours`] entries; a colour that no node uses
/// yields an empty class.
///
/// ```
/// use thrml::graph::colour_classes;
///
/// assert_eq!(colour_classes(&[1, 0, 1, 2]), vec![vec![1], vec![0, 2], vec![3]]);
/// ```
#[must_use]
pub fn colour_classes(colours: &[usize]) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); n_colours(colours)];
    for (node, &c) in colours.iter().enumerate() {
        classes[c].push(node);
    }
    classes
}

/// Checks that `colours` assigns one colour per node and that no two
/// adjacent nodes share a colour.
///
/// # Errors
///
/// [`GraphError::ColouringLength`] if `colours.len() != adj.n_nodes()`, or
/// [`GraphError::InvalidColouring`] naming the first conflicting edge
/// `(u, v)`, `u < v`, in lexicographic order.
///
/// ```
/// use thrml::graph::{Adjacency, check_colouring};
///
/// let path = Adjacency::from_edges(3, [(0, 1), (1, 2)]).unwrap();
/// assert!(check_colouring(&path, &[0, 1, 0]).is_ok());
/// let err = check_colouring(&path, &[0, 1, 1]).unwrap_err();
/// assert!(err.to_string().contains("nodes 1 and 2"));
/// ```
pub fn check_colouring(adj: &Adjacency, colours: &[usize]) -> Result<(), GraphError> {
    if colours.len() != adj.n_nodes() {
        return Err(GraphError::ColouringLength {
            n_nodes: adj.n_nodes(),
            found: colours.len(),
        });
    }
    match adj.edges().find(|&(u, v)| colours[u] == colours[v]) {
        Some((u, v)) => Err(GraphError::InvalidColouring {
            u,
            v,
            colour: colours[u],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, enough for reproducible random test graphs.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_graph(n: usize, m: usize, seed: u64) -> Adjacency {
        let mut rng = SplitMix(seed);
        let edges: Vec<_> = (0..m).map(|_| (rng.below(n), rng.below(n))).collect();
        Adjacency::from_edges(n, edges).unwrap()
    }

    fn open_grid(rows: usize, cols: usize) -> Adjacency {
        let mut edges = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                if c + 1 < cols {
                    edges.push((i, i + 1));
                }
                if r + 1 < rows {
                    edges.push((i, i + cols));
                }
            }
        }
        Adjacency::from_edges(rows * cols, edges).unwrap()
    }

    #[test]
    fn csr_is_sorted_deduplicated_and_loop_free() {
        let adj =
            Adjacency::from_edges(5, [(3, 1), (1, 3), (1, 0), (2, 2), (4, 1), (1, 4)]).unwrap();
        assert_eq!(adj.n_nodes(), 5);
        assert_eq!(adj.n_edges(), 3);
        assert_eq!(adj.neighbours(1), &[0, 3, 4]);
        assert_eq!(adj.neighbours(2), &[] as &[usize]);
        assert_eq!(adj.degree(1), 3);
        assert_eq!(adj.max_degree(), 3);
        assert_eq!(
            adj.edges().collect::<Vec<_>>(),
            vec![(0, 1), (1, 3), (1, 4)]
        );
    }

    #[test]
    fn empty_graph() {
        let adj = Adjacency::from_edges(0, []).unwrap();
        assert_eq!(adj.n_nodes(), 0);
        assert_eq!(adj.n_edges(), 0);
        assert!(dsatur_colouring(&adj).is_empty());
        assert!(greedy_colouring(&adj).is_empty());
        assert!(colour_classes(&[]).is_empty());
        check_colouring(&adj, &[]).unwrap();
    }

    #[test]
    fn out_of_range_edge_names_index_and_node() {
        let err = Adjacency::from_edges(3, [(0, 1), (1, 2), (2, 7)]).unwrap_err();
        assert!(matches!(
            err,
            GraphError::EdgeOutOfRange {
                edge: 2,
                node: 7,
                n_nodes: 3
            }
        ));
        assert!(err.to_string().contains("edge 2"));
        assert!(err.to_string().contains("node 7"));
    }

    #[test]
    fn three_clique_gives_three_edges() {
        let adj = Adjacency::from_cliques(3, [[0, 1, 2]]).unwrap();
        assert_eq!(adj.n_edges(), 3);
        assert_eq!(
            adj.edges().collect::<Vec<_>>(),
            vec![(0, 1), (0, 2), (1, 2)]
        );
        assert_eq!(n_colours(&dsatur_colouring(&adj)), 3);
    }

    #[test]
    fn cliques_merge_and_validate() {
        let cliques: Vec<Vec<usize>> =
            vec![vec![0, 1], vec![1, 0, 1], vec![2], vec![], vec![3, 4, 5, 6]];
        let adj = Adjacency::from_cliques(7, &cliques).unwrap();
        assert_eq!(adj.n_edges(), 1 + 6);
        let err = Adjacency::from_cliques(3, [vec![0, 1], vec![2, 9]]).unwrap_err();
        assert!(matches!(
            err,
            GraphError::CliqueOutOfRange {
                clique: 1,
                node: 9,
                ..
            }
        ));
    }

    #[test]
    fn colourings_of_grids_are_valid_and_bipartite() {
        for (rows, cols) in [(1, 1), (1, 7), (5, 5), (8, 13), (32, 32)] {
            let adj = open_grid(rows, cols);
            let d = dsatur_colouring(&adj);
            let g = greedy_colouring(&adj);
            check_colouring(&adj, &d).unwrap();
            check_colouring(&adj, &g).unwrap();
            let expected = if rows * cols == 1 { 1 } else { 2 };
            assert_eq!(n_colours(&d), expected, "{rows}x{cols}");
            assert_eq!(n_colours(&g), expected, "{rows}x{cols}");
        }
    }

    #[test]
    fn colourings_of_random_graphs_are_valid() {
        for seed in 0..20 {
            let n = 50 + 37 * seed as usize;
            let adj = random_graph(n, 4 * n, seed);
            let d = dsatur_colouring(&adj);
            let g = greedy_colouring(&adj);
            check_colouring(&adj, &d).unwrap();
            check_colouring(&adj, &g).unwrap();
            assert!(n_colours(&d) <= adj.max_degree() + 1);
            assert!(n_colours(&g) <= adj.max_degree() + 1);
        }
    }

    /// Textbook quadratic DSATUR with the documented tie-break, used to
    /// check that the bucket-queue implementation picks the same nodes.
    fn reference_dsatur(adj: &Adjacency) -> Vec<usize> {
        let n = adj.n_nodes();
        let mut colours: Vec<Option<usize>> = vec![None; n];
        for _ in 0..n {
            let neighbour_colours = |i: usize| -> HashSet<usize> {
                adj.neighbours(i)
                    .iter()
                    .filter_map(|&v| colours[v])
                    .collect()
            };
            let i = (0..n)
                .filter(|&i| colours[i].is_none())
                .max_by_key(|&i| (neighbour_colours(i).len(), adj.degree(i), Reverse(i)))
                .unwrap();
            let used = neighbour_colours(i);
            colours[i] = (0..).find(|c| !used.contains(c));
        }
        colours.into_iter().map(Option::unwrap).collect()
    }

    #[test]
    fn dsatur_matches_reference_implementation() {
        for seed in 0..24 {
            let n = 20 + 11 * seed as usize;
            let m = n * (1 + seed as usize % 6);
            let adj = random_graph(n, m, 1000 + seed);
            assert_eq!(
                dsatur_colouring(&adj),
                reference_dsatur(&adj),
                "seed {seed}"
            );
        }
        // Dense graphs needing more than 64 colours.
        for seed in 0..3 {
            let n = 160 + 10 * seed as usize;
            let adj = random_graph(n, 2 * n * n, 2000 + seed);
            let fast = dsatur_colouring(&adj);
            assert!(n_colours(&fast) > 64, "{}", n_colours(&fast));
            assert_eq!(fast, reference_dsatur(&adj), "dense seed {seed}");
        }
        let adj = open_grid(9, 11);
        assert_eq!(dsatur_colouring(&adj), reference_dsatur(&adj));
    }

    #[test]
    fn dsatur_handles_more_than_64_colours() {
        // A 70-clique plus a pendant node on each clique node.
        let n = 70;
        let clique: Vec<usize> = (0..n).collect();
        let pendants: Vec<Vec<usize>> = (0..n).map(|i| vec![i, n + i]).collect();
        let adj = Adjacency::from_cliques(2 * n, std::iter::once(clique).chain(pendants)).unwrap();
        let d = dsatur_colouring(&adj);
        check_colouring(&adj, &d).unwrap();
        assert_eq!(n_colours(&d), n);
        let g = greedy_colouring(&adj);
        check_colouring(&adj, &g).unwrap();
        assert_eq!(n_colours(&g), n);
    }

    #[test]
    fn dsatur_is_deterministic_and_optimal_on_small_cases() {
        let odd_cycle = Adjacency::from_edges(7, (0..7).map(|i| (i, (i + 1) % 7))).unwrap();
        let a = dsatur_colouring(&odd_cycle);
        assert_eq!(a, dsatur_colouring(&odd_cycle));
        assert_eq!(n_colours(&a), 3);
        // Crown graph: greedy in index order needs n/2 colours, DSATUR 2.
        let k = 6;
        let crown: Vec<(usize, usize)> = (0..k)
            .flat_map(|i| {
                (0..k)
                    .filter(move |&j| j != i)
                    .map(move |j| (2 * i, 2 * j + 1))
            })
            .collect();
        let adj = Adjacency::from_edges(2 * k, crown).unwrap();
        assert_eq!(n_colours(&greedy_colouring(&adj)), k);
        let d = dsatur_colouring(&adj);
        check_colouring(&adj, &d).unwrap();
        assert_eq!(n_colours(&d), 2);
    }

    #[test]
    fn check_colouring_reports_conflict_and_length() {
        let adj = Adjacency::from_edges(4, [(0, 1), (1, 2), (2, 3)]).unwrap();
        let err = check_colouring(&adj, &[0, 1, 0, 0]).unwrap_err();
        assert!(matches!(
            err,
            GraphError::InvalidColouring {
                u: 2,
                v: 3,
                colour: 0
            }
        ));
        let err = check_colouring(&adj, &[0, 1]).unwrap_err();
        assert!(matches!(
            err,
            GraphError::ColouringLength {
                n_nodes: 4,
                found: 2
            }
        ));
    }

    #[test]
    fn classes_group_by_colour() {
        let classes = colour_classes(&[2, 0, 2, 0, 1]);
        assert_eq!(classes, vec![vec![1, 3], vec![4], vec![0, 2]]);
        assert_eq!(colour_classes(&[1]), vec![vec![], vec![0]]);
    }

    #[test]
    fn colour_set_smallest_absent() {
        let mut s = ColourSet::default();
        assert_eq!(s.smallest_absent(), 0);
        assert!(s.insert(0));
        assert!(!s.insert(0));
        assert!(s.insert(2));
        assert_eq!(s.smallest_absent(), 1);
        for c in 0..66 {
            s.insert(c);
        }
        assert_eq!(s.smallest_absent(), 66);
        assert!(s.insert(100));
        assert!(!s.insert(100));
        assert_eq!(s.smallest_absent(), 66);
    }
}
