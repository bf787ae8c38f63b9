//! `colour_superblocks` on every shared topology and on grids: valid, complete, and
//! Pegasus in at most 5 colours with DSATUR.

use std::collections::HashMap;
use std::path::Path;

use thrml::graph::{
    Colouring, colour_superblocks, double_grid, grid_edges, grid_skip_edges, read_edge_list,
};
use thrml::{Node, NodeKind, SuperBlock};

/// Checks every node is in exactly one block, no edge is inside a superblock, blocks hold
/// one kind; returns the number of superblocks.
fn check(nodes: &[Node], edges: &[(Node, Node)], sbs: &[SuperBlock]) -> usize {
    let mut colour: HashMap<Node, usize> = HashMap::new();
    for (c, sb) in sbs.iter().enumerate() {
        for b in &sb.0 {
            assert!(b.nodes().iter().all(|n| n.kind() == b.node_kind()));
            for &n in b.nodes() {
                assert!(colour.insert(n, c).is_none(), "node {} twice", n.id());
            }
        }
    }
    assert_eq!(colour.len(), nodes.len());
    for (a, b) in edges {
        assert_ne!(
            colour[a],
            colour[b],
            "nodes {} and {} share a colour",
            a.id(),
            b.id()
        );
    }
    sbs.len()
}

fn lift(n: usize, edges: &[(usize, usize)], kinds: bool) -> (Vec<Node>, Vec<(Node, Node)>) {
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            if kinds && i % 3 == 0 {
                Node::categorical()
            } else {
                Node::new(NodeKind::SPIN)
            }
        })
        .collect();
    let e = edges.iter().map(|&(a, b)| (nodes[a], nodes[b])).collect();
    (nodes, e)
}

#[test]
fn grids_and_double_grid() {
    type Case = (usize, Vec<(usize, usize)>, usize);
    let cases: Vec<Case> = vec![
        (64, grid_edges(8, 8, false), 2),
        (64, grid_edges(8, 8, true), 2),
        (35, grid_edges(5, 7, true), 3),
        (100, grid_skip_edges(10, 10, &[1, 2], true), 6),
        (double_grid(12, &[1, 4]).0, double_grid(12, &[1, 4]).1, 2),
    ];
    for (n, edges, max) in cases {
        for kinds in [false, true] {
            let (nodes, e) = lift(n, &edges, kinds);
            for m in [Colouring::Greedy, Colouring::Dsatur] {
                let k = check(&nodes, &e, &colour_superblocks(&nodes, &e, m).unwrap());
                if m == Colouring::Dsatur {
                    assert!(k <= max, "{n} nodes: {k} colours");
                }
            }
        }
    }
}

#[test]
fn every_topology_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/topologies");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("note: {} not found; skipping", dir.display());
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let (n, edges) = read_edge_list(&path).unwrap();
        let (nodes, e) = lift(n, &edges, false);
        let k = check(
            &nodes,
            &e,
            &colour_superblocks(&nodes, &e, Colouring::Dsatur).unwrap(),
        );
        check(
            &nodes,
            &e,
            &colour_superblocks(&nodes, &e, Colouring::Greedy).unwrap(),
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("pegasus") {
            assert!(k <= 5, "{name}: {k} colours");
        }
    }
}

#[test]
fn unknown_node_is_named() {
    let a = Node::spin();
    let b = Node::spin();
    let err = colour_superblocks(&[a], &[(a, b)], Colouring::Dsatur).unwrap_err();
    assert!(
        err.to_string().contains(&format!("node {}", b.id())),
        "{err}"
    );
}
