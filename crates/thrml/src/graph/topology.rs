//! Standard sampler topologies and edge-list files.
//!
//! Every edge list returned here is normalised (`u < v`), deduplicated and
//! sorted, so it can be passed straight to
//! [`Adjacency::from_edges`](super::Adjacency::from_edges).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use super::{GraphError, ParseErrorKind};

/// Reads an edge-list file.
///
/// The format: lines whose first non-blank character is `#` are comments and
/// blank lines are ignored; the first other line is the header `n m` (node
/// and edge counts); then exactly `m` lines `u v` with 0-based node ids below
/// `n`. See [`parse_edge_list`] for the validation performed.
///
/// Returns `(n, edges)` with each edge normalised to `u < v`, in file order.
///
/// # Errors
///
/// [`GraphError::Io`] if the file cannot be read, or [`GraphError::Parse`]
/// naming the file, the 1-based line and what was wrong.
///
/// # Example
///
/// ```
/// use thrml::graph::read_edge_list;
///
/// let path = std::env::temp_dir().join(format!("thrml-doc-{}.txt", std::process::id()));
/// std::fs::write(&path, "# a triangle\n3 3\n0 1\n0 2\n1 2\n").unwrap();
/// let (n, edges) = read_edge_list(&path).unwrap();
/// std::fs::remove_file(&path).unwrap();
/// assert_eq!(n, 3);
/// assert_eq!(edges, vec![(0, 1), (0, 2), (1, 2)]);
/// ```
pub fn read_edge_list(path: &Path) -> Result<(usize, Vec<(usize, usize)>), GraphError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| GraphError::Io {
        file: file.clone(),
        source,
    })?;
    parse_edge_list(&text, &file)
}

/// Parses edge-list text (the format of [`read_edge_list`]); `source` names
/// the text in error messages, typically the file path.
///
/// Edges may be given as `u v` or `v u`; they are returned normalised to
/// `u < v`, in input order.
///
/// # Errors
///
/// [`GraphError::Parse`] with `file = source`, the 1-based line number and a
/// [`ParseErrorKind`]: missing header, wrong number of fields, bad integer,
/// node out of range, self-loop, duplicate edge (in either orientation), or
/// an edge count that differs from the header (too few edges is reported at
/// the header line, too many at the first extra line).
///
/// # Example
///
/// ```
/// use thrml::graph::parse_edge_list;
///
/// let (n, edges) = parse_edge_list("# path\n3 2\n0 1\n2 1\n", "path.txt").unwrap();
/// assert_eq!((n, edges), (3, vec![(0, 1), (1, 2)]));
///
/// let err = parse_edge_list("3 2\n0 1\n1 3\n", "bad.txt").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "bad.txt:3: node 3 is out of range (the header declares 3 nodes)"
/// );
/// ```
pub fn parse_edge_list(
    text: &str,
    source: &str,
) -> Result<(usize, Vec<(usize, usize)>), GraphError> {
    let err = |line: usize, kind: ParseErrorKind| GraphError::Parse {
        file: source.to_owned(),
        line,
        kind,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));

    let Some((header_line, header)) = lines.next() else {
        let last = text.lines().count().max(1);
        return Err(err(last, ParseErrorKind::MissingHeader));
    };
    let [n_nodes, n_edges] = parse_pair(header, "header").map_err(|k| err(header_line, k))?;

    // Cap the pre-allocation so a bogus header cannot exhaust memory.
    let mut edges = Vec::with_capacity(n_edges.min(text.len() / 4 + 1));
    let mut first_seen: HashMap<(usize, usize), usize> = HashMap::with_capacity(edges.capacity());
    for (line, content) in lines {
        if edges.len() == n_edges {
            return Err(err(
                line,
                ParseErrorKind::TooManyEdges { declared: n_edges },
            ));
        }
        let [a, b] = parse_pair(content, "edge").map_err(|k| err(line, k))?;
        for node in [a, b] {
            if node >= n_nodes {
                return Err(err(line, ParseErrorKind::NodeOutOfRange { node, n_nodes }));
            }
        }
        if a == b {
            return Err(err(line, ParseErrorKind::SelfLoop { node: a }));
        }
        let (u, v) = (a.min(b), a.max(b));
        match first_seen.entry((u, v)) {
            Entry::Occupied(first) => {
                let first_line = *first.get();
                return Err(err(
                    line,
                    ParseErrorKind::DuplicateEdge { u, v, first_line },
                ));
            }
            Entry::Vacant(slot) => {
                slot.insert(line);
            }
        }
        edges.push((u, v));
    }
    if edges.len() != n_edges {
        return Err(err(
            header_line,
            ParseErrorKind::TooFewEdges {
                declared: n_edges,
                found: edges.len(),
            },
        ));
    }
    Ok((n_nodes, edges))
}

/// Parses exactly two whitespace-separated non-negative integers.
fn parse_pair(line: &str, what: &'static str) -> Result<[usize; 2], ParseErrorKind> {
    let mut fields = line.split_whitespace();
    let (Some(a), Some(b), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(ParseErrorKind::FieldCount {
            what,
            found: line.split_whitespace().count(),
        });
    };
    let parse = |token: &str| {
        token
            .parse::<usize>()
            .map_err(|_| ParseErrorKind::BadInteger {
                token: token.to_owned(),
            })
    };
    Ok([parse(a)?, parse(b)?])
}

/// Normalises to `u < v`, drops self-loops, sorts and deduplicates.
fn normalise(mut edges: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    edges.retain(|&(u, v)| u != v);
    for e in &mut edges {
        if e.0 > e.1 {
            *e = (e.1, e.0);
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// Nearest-neighbour (4-neighbour) edges of a `rows × cols` grid; node
/// `(r, c)` has id `r * cols + c`.
///
/// With `periodic` the grid wraps around in both directions (a torus).
/// Edges are normalised `u < v`, deduplicated and sorted. Equivalent to
/// `grid_skip_edges(rows, cols, &[1], periodic)`.
///
/// ```
/// use thrml::graph::grid_edges;
///
/// assert_eq!(grid_edges(2, 2, false), vec![(0, 1), (0, 2), (1, 3), (2, 3)]);
/// assert_eq!(grid_edges(4, 4, false).len(), 24);
/// assert_eq!(grid_edges(4, 4, true).len(), 32);
/// ```
#[must_use]
pub fn grid_edges(rows: usize, cols: usize, periodic: bool) -> Vec<(usize, usize)> {
    grid_skip_edges(rows, cols, &[1], periodic)
}

/// Edges of a `rows × cols` grid joining each node `(r, c)` (id
/// `r * cols + c`) to `(r, c + d)` and `(r + d, c)` for every offset `d` in
/// `skips`.
///
/// With `periodic` the offsets wrap around (a torus); otherwise offsets that
/// leave the grid are dropped. Offsets of 0, and periodic offsets that wrap
/// back onto the node itself, produce no edge. `skips = [1]` gives
/// [`grid_edges`]. Edges are normalised `u < v`, deduplicated and sorted.
///
/// ```
/// use thrml::graph::{grid_edges, grid_skip_edges};
///
/// assert_eq!(grid_skip_edges(5, 5, &[1], true), grid_edges(5, 5, true));
/// // A 1×5 open chain with offsets 1 and 2.
/// assert_eq!(grid_skip_edges(1, 5, &[1, 2], false).len(), 4 + 3);
/// ```
#[must_use]
pub fn grid_skip_edges(
    rows: usize,
    cols: usize,
    skips: &[usize],
    periodic: bool,
) -> Vec<(usize, usize)> {
    let mut edges = Vec::with_capacity(2 * rows * cols * skips.len());
    // Target coordinate after moving `d` along an axis of length `len`.
    let step = |x: usize, d: usize, len: usize| -> Option<usize> {
        if periodic {
            Some((x + d % len) % len)
        } else {
            (x + d < len).then_some(x + d)
        }
    };
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            for &d in skips {
                if let Some(c2) = step(c, d, cols) {
                    edges.push((i, r * cols + c2));
                }
                if let Some(r2) = step(r, d, rows) {
                    edges.push((i, r2 * cols + c));
                }
            }
        }
    }
    normalise(edges)
}

/// Checkerboard 2-colouring of a `rows × cols` grid: node `r * cols + c` gets
/// colour `(r + c) % 2`.
///
/// Valid for an open grid, and for a periodic grid whose sides are even.
///
/// ```
/// use thrml::graph::{Adjacency, check_colouring, checkerboard, grid_edges};
///
/// let adj = Adjacency::from_edges(16, grid_edges(4, 4, true)).unwrap();
/// check_colouring(&adj, &checkerboard(4, 4)).unwrap();
/// ```
#[must_use]
pub fn checkerboard(rows: usize, cols: usize) -> Vec<usize> {
    (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (r + c) % 2))
        .collect()
}

/// A bipartite two-layer torus: returns `(2 * side², edges)`.
///
/// Upper-layer node `(i, j)` has id `i * side + j`, lower-layer node `(i, j)`
/// has id `side² + i * side + j`. Each upper `(i, j)` is coupled to lower
/// `(i, j)` and, for every `d` in `distances`, to the lower nodes `d` steps
/// away in each of the four directions, `(i ± d, j)` and `(i, j ± d)`, with
/// wraparound. There are no edges inside a layer, so the layers are a valid
/// 2-colouring. Edges are normalised `u < v`, deduplicated and sorted.
///
/// ```
/// use thrml::graph::double_grid;
///
/// let (n, edges) = double_grid(40, &[1, 4, 15]);
/// assert_eq!(n, 3200);
/// assert_eq!(edges.len(), 40 * 40 * 13);
/// ```
#[must_use]
pub fn double_grid(side: usize, distances: &[usize]) -> (usize, Vec<(usize, usize)>) {
    let layer = side * side;
    let mut edges = Vec::with_capacity(layer * (1 + 4 * distances.len()));
    for i in 0..side {
        for j in 0..side {
            let upper = i * side + j;
            let lower = |r: usize, c: usize| layer + r * side + c;
            edges.push((upper, lower(i, j)));
            for &d in distances {
                let d = d % side;
                let (up, down) = ((i + side - d) % side, (i + d) % side);
                let (left, right) = ((j + side - d) % side, (j + d) % side);
                edges.push((upper, lower(up, j)));
                edges.push((upper, lower(down, j)));
                edges.push((upper, lower(i, left)));
                edges.push((upper, lower(i, right)));
            }
        }
    }
    (2 * layer, normalise(edges))
}

#[cfg(test)]
mod tests {
    use super::super::{
        Adjacency, check_colouring, colour_classes, dsatur_colouring, greedy_colouring, n_colours,
    };
    use super::*;
    use std::time::Instant;

    const TOPOLOGY_DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/topologies/"
    );

    /// Loads a shared topology, or `None` (with a note) if it is absent.
    fn load(name: &str) -> Option<(usize, Vec<(usize, usize)>)> {
        let path = Path::new(TOPOLOGY_DIR).join(name);
        if !path.exists() {
            eprintln!("note: {} not found; skipping", path.display());
            return None;
        }
        Some(read_edge_list(&path).unwrap())
    }

    /// Reads, colours and validates one topology; returns DSATUR's colour count.
    fn check_topology(name: &str, n_expected: usize, m_expected: usize) -> Option<usize> {
        let (n, edges) = load(name)?;
        assert_eq!((n, edges.len()), (n_expected, m_expected), "{name}");
        let adj = Adjacency::from_edges(n, edges).unwrap();
        assert_eq!(adj.n_edges(), m_expected, "{name}");

        let t = Instant::now();
        let colours = dsatur_colouring(&adj);
        let elapsed = t.elapsed();
        check_colouring(&adj, &colours).unwrap();
        let k = n_colours(&colours);
        let greedy = greedy_colouring(&adj);
        check_colouring(&adj, &greedy).unwrap();
        let sizes: Vec<usize> = colour_classes(&colours).iter().map(Vec::len).collect();
        eprintln!(
            "{name}: n={n} m={m_expected} max_degree={} dsatur={k} colours {sizes:?} in {elapsed:?}, greedy={}",
            adj.max_degree(),
            n_colours(&greedy)
        );
        Some(k)
    }

    #[test]
    fn pegasus14_colouring() {
        if let Some(k) = check_topology("pegasus14.txt", 4264, 30404) {
            assert!(k <= 5, "DSATUR used {k} colours on Pegasus P(14)");
        }
    }

    #[test]
    fn pegasus16_colouring() {
        if let Some(k) = check_topology("pegasus16.txt", 5640, 40484) {
            assert!(k <= 5, "DSATUR used {k} colours on Pegasus P(16)");
        }
    }

    #[test]
    fn zephyr12_4_colouring() {
        check_topology("zephyr12_4.txt", 4800, 45864);
    }

    #[test]
    fn chimera16_colouring() {
        // Chimera is bipartite, and DSATUR is exact on bipartite graphs.
        if let Some(k) = check_topology("chimera16.txt", 2048, 6016) {
            assert_eq!(k, 2);
        }
    }

    fn parse_err(text: &str) -> (usize, ParseErrorKind, String) {
        match parse_edge_list(text, "g.txt").unwrap_err() {
            e @ GraphError::Parse { .. } => {
                let msg = e.to_string();
                let GraphError::Parse { file, line, kind } = e else {
                    unreachable!()
                };
                assert_eq!(file, "g.txt");
                assert!(msg.starts_with(&format!("g.txt:{line}: ")), "{msg}");
                (line, kind, msg)
            }
            e => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn parse_accepts_comments_blank_lines_and_either_orientation() {
        let text = "# comment\n\n  # indented comment\n4 3\r\n0 1\n3 2\n\n1 2\n# trailing\n";
        let (n, edges) = parse_edge_list(text, "g.txt").unwrap();
        assert_eq!(n, 4);
        assert_eq!(edges, vec![(0, 1), (2, 3), (1, 2)]);
        assert_eq!(parse_edge_list("5 0\n", "x").unwrap(), (5, vec![]));
    }

    #[test]
    fn parse_errors_name_file_line_and_problem() {
        let (line, kind, _) = parse_err("# only comments\n\n");
        assert_eq!((line, kind), (2, ParseErrorKind::MissingHeader));
        assert_eq!(parse_err("").0, 1);

        let (line, kind, msg) = parse_err("# c\n3 x\n");
        assert_eq!(line, 2);
        assert_eq!(kind, ParseErrorKind::BadInteger { token: "x".into() });
        assert!(msg.contains("bad integer \"x\""), "{msg}");

        let (line, kind, _) = parse_err("3 1\n0 -1\n");
        assert_eq!(
            (line, kind),
            (2, ParseErrorKind::BadInteger { token: "-1".into() })
        );

        let (line, kind, _) = parse_err("3 1 7\n");
        assert_eq!(
            (line, kind),
            (
                1,
                ParseErrorKind::FieldCount {
                    what: "header",
                    found: 3
                }
            )
        );

        let (line, kind, _) = parse_err("3 1\n0\n");
        assert_eq!(
            (line, kind),
            (
                2,
                ParseErrorKind::FieldCount {
                    what: "edge",
                    found: 1
                }
            )
        );

        let (line, kind, msg) = parse_err("3 2\n0 1\n# c\n1 3\n");
        assert_eq!(
            (line, kind),
            (
                4,
                ParseErrorKind::NodeOutOfRange {
                    node: 3,
                    n_nodes: 3
                }
            )
        );
        assert!(msg.contains("out of range"), "{msg}");

        let (line, kind, msg) = parse_err("3 2\n0 1\n2 2\n");
        assert_eq!((line, kind), (3, ParseErrorKind::SelfLoop { node: 2 }));
        assert!(msg.contains("self-loop"), "{msg}");

        let (line, kind, msg) = parse_err("3 3\n0 1\n1 2\n1 0\n");
        assert_eq!(
            (line, kind),
            (
                4,
                ParseErrorKind::DuplicateEdge {
                    u: 0,
                    v: 1,
                    first_line: 2
                }
            )
        );
        assert!(msg.contains("duplicate edge"), "{msg}");

        let (line, kind, msg) = parse_err("# c\n3 3\n0 1\n1 2\n");
        assert_eq!(
            (line, kind),
            (
                2,
                ParseErrorKind::TooFewEdges {
                    declared: 3,
                    found: 2
                }
            )
        );
        assert!(msg.contains("declares 3 edges"), "{msg}");

        let (line, kind, _) = parse_err("3 1\n0 1\n1 2\n");
        assert_eq!(
            (line, kind),
            (3, ParseErrorKind::TooManyEdges { declared: 1 })
        );

        // A huge declared edge count is an error, not an allocation failure.
        let (_, kind, _) = parse_err(&format!("3 {}\n0 1\n", usize::MAX));
        assert!(matches!(kind, ParseErrorKind::TooFewEdges { found: 1, .. }));
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("thrml-graph-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.txt");
        std::fs::write(&path, "2 1\n0 5\n").unwrap();
        let msg = read_edge_list(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}:2: ", path.display())), "{msg}");

        let missing = dir.join("missing.txt");
        let err = read_edge_list(&missing).unwrap_err();
        assert!(matches!(err, GraphError::Io { .. }));
        assert!(err.to_string().contains("missing.txt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn grids_have_expected_edge_counts() {
        assert_eq!(grid_edges(3, 4, false).len(), 3 * 3 + 2 * 4);
        assert_eq!(grid_edges(3, 4, true).len(), 2 * 12);
        // Periodic side of 2 and 1: wrap-around duplicates and self-loops vanish.
        assert_eq!(grid_edges(2, 2, true), grid_edges(2, 2, false));
        assert_eq!(grid_edges(1, 3, true), vec![(0, 1), (0, 2), (1, 2)]);
        assert!(grid_edges(0, 5, true).is_empty());
        assert!(grid_edges(1, 1, true).is_empty());
        assert_eq!(grid_skip_edges(6, 7, &[1], false), grid_edges(6, 7, false));
        assert_eq!(
            grid_skip_edges(6, 7, &[1, 1, 0], true),
            grid_edges(6, 7, true)
        );
        // Open 10x10 with offsets 1 and 3: rows contribute 10*(9+7) each way.
        assert_eq!(
            grid_skip_edges(10, 10, &[1, 3], false).len(),
            2 * 10 * (9 + 7)
        );
        assert_eq!(grid_skip_edges(10, 10, &[1, 3], true).len(), 4 * 100);
        for edges in [
            grid_skip_edges(7, 5, &[1, 2, 4], true),
            grid_edges(9, 4, false),
        ] {
            assert!(edges.windows(2).all(|w| w[0] < w[1]));
            assert!(edges.iter().all(|&(u, v)| u < v));
        }
    }

    #[test]
    fn checkerboard_colours_grids() {
        for (rows, cols, periodic) in [(5, 7, false), (4, 6, true), (1, 1, false), (8, 8, true)] {
            let adj = Adjacency::from_edges(rows * cols, grid_edges(rows, cols, periodic)).unwrap();
            check_colouring(&adj, &checkerboard(rows, cols)).unwrap();
        }
        let adj = Adjacency::from_edges(15, grid_edges(3, 5, true)).unwrap();
        assert!(check_colouring(&adj, &checkerboard(3, 5)).is_err());
        // Odd torus: DSATUR still finds a valid colouring (3 colours).
        let d = dsatur_colouring(&adj);
        check_colouring(&adj, &d).unwrap();
        assert_eq!(n_colours(&d), 3);
    }

    #[test]
    fn double_grid_shape() {
        let (n, edges) = double_grid(40, &[1, 4, 15]);
        assert_eq!(n, 3200);
        assert_eq!(edges.len(), 20_800);
        let layer = 1600;
        assert!(
            edges
                .iter()
                .all(|&(u, v)| u < layer && (layer..n).contains(&v))
        );
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        let adj = Adjacency::from_edges(n, edges).unwrap();
        assert!((0..n).all(|i| adj.degree(i) == 13));
        let d = dsatur_colouring(&adj);
        check_colouring(&adj, &d).unwrap();
        assert_eq!(n_colours(&d), 2);
        // Layers are a valid colouring.
        let layers: Vec<usize> = (0..n).map(|i| usize::from(i >= layer)).collect();
        check_colouring(&adj, &layers).unwrap();
    }

    #[test]
    fn double_grid_deduplicates_wrapped_distances() {
        // Side 4: distance 2 up and down coincide, distance 4 wraps to 0.
        let (n, edges) = double_grid(4, &[2, 4]);
        assert_eq!(n, 32);
        assert_eq!(edges.len(), 16 * 3);
        assert_eq!(double_grid(0, &[1]), (0, vec![]));
    }
}
