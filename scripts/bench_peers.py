#!/usr/bin/env python3
"""Measure peer samplers on the same Ising workload as `thrml bench`, in flips/ns.

Peers (installed OUTSIDE this repository; never a build or test dependency):

* ``thrml``  — Extropic's THRML (JAX, CPU): ``IsingEBM`` + ``IsingSamplingProgram`` with the
  DSATUR colour classes as blocks, ``hinton_init``, ``sample_states`` with schedule
  ``(n_warmup=sweeps, n_samples=1, steps_per_sample=1)`` observing one node only,
  ``jax.vmap`` over chains inside one ``jax.jit``; timed with ``jax.block_until_ready``,
  after a first call that compiles (compile time excluded and reported separately).
* ``dwave``  — dwave-samplers ``SimulatedAnnealingSampler`` with
  ``proposal_acceptance_criteria="Gibbs"``, ``beta_schedule_type="custom"``,
  ``beta_schedule=[1.0] * sweeps`` (constant β = 1), ``num_reads = chains``. Timed: the
  whole ``sample`` call (initial states, sweeps, building the SampleSet); the sampler's own
  ``info["timing"]["sampling_ns"]`` is reported too.

Workload: the edge list ``DATA/topologies/<topology>.txt`` (the file ``thrml bench`` reads),
N(0, 1) biases and couplings from ``--seed`` (numpy), β = 1,
``E(s) = −(Σ b_i s_i + Σ J_ij s_i s_j)``; dwave gets ``h = −b``, ``J = −J`` for the same
Boltzmann distribution. Blocks for THRML: a DSATUR colouring of the graph (4 colours on
Pegasus). A flip is one spin update in one chain; a run of S sweeps over C chains does
``n · C · S`` flips.

For every chain count, calibration runs (at S and 2S sweeps, so that per-call overhead cancels)
pick the sweeps so that the sweeps of one timed run take about ``--target-seconds`` (unless
``--sweeps`` is given); per-call overhead comes on top and is included in the timing. A point
whose estimated cost exceeds ``--max-seconds`` is skipped with a note. A timed run has at least
``--min-sweeps`` sweeps (default 4): XLA runs a 1-sweep scan far faster per sweep than a
longer one (measured at 4096 chains: ~1.1 s for 1 sweep, ~4.5 s for 2). Figures are medians of ``--repeats`` timed runs.

Usage (from the repository root)::

    /work/peers/bin/python scripts/bench_peers.py --data-dir ../shared/data \\
        --chains 1,16,256,4096 --repeats 5 [--peers thrml,dwave] [--json out.json] \\
        [--ours ours.json]

``--ours`` takes the output of ``thrml bench --json`` from the same session and prints
ratios (ours / peer) for the matching chain counts.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import statistics
import sys
import time


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_edge_list(path: str) -> tuple[int, list[tuple[int, int]]]:
    """Read the shared edge-list format: '#' comments, a header 'n m', then 'u v' lines."""
    header = None
    edges: list[tuple[int, int]] = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            a, b = line.split()
            if header is None:
                header = (int(a), int(b))
                continue
            u, v = int(a), int(b)
            edges.append((min(u, v), max(u, v)))
    if header is None:
        raise SystemExit(f"error: {path}: no 'n m' header")
    n, m = header
    if len(edges) != m:
        raise SystemExit(f"error: {path}: header declares {m} edges, found {len(edges)}")
    return n, edges


def dsatur(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """DSATUR colouring: repeatedly colour the uncoloured node with the most distinct
    neighbour colours (ties: higher degree, then lower index) with the smallest free colour."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        adj[u].append(v)
        adj[v].append(u)
    colour = [-1] * n
    seen: list[set[int]] = [set() for _ in range(n)]
    heap = [(0, -len(adj[i]), i) for i in range(n)]
    heapq.heapify(heap)
    while heap:
        neg_sat, _, i = heapq.heappop(heap)
        if colour[i] >= 0 or -neg_sat != len(seen[i]):
            continue  # stale entry
        c = 0
        while c in seen[i]:
            c += 1
        colour[i] = c
        for v in adj[i]:
            if colour[v] < 0 and c not in seen[v]:
                seen[v].add(c)
                heapq.heappush(heap, (-len(seen[v]), -len(adj[v]), v))
    for u, v in edges:
        assert colour[u] != colour[v], "invalid colouring"
    return colour


def machine() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def measure(run, sweeps: int, repeats: int) -> list[float]:
    times = []
    for r in range(repeats):
        t = time.perf_counter()
        run(sweeps, r)
        times.append(time.perf_counter() - t)
    return times


def pick_sweeps(args, per_sweep_s: float) -> int:
    if args.sweeps:
        return args.sweeps
    return max(args.min_sweeps, min(args.max_sweeps, math.ceil(args.target_seconds / max(per_sweep_s, 1e-9))))


# --------------------------------------------------------------------------------------
# THRML
# --------------------------------------------------------------------------------------


class ThrmlPeer:
    name = "thrml"

    def __init__(self, n, edges, biases, weights, colours, seed):
        import jax
        import jax.numpy as jnp
        import thrml
        from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init

        self.jax = jax
        self.thrml = thrml
        self.version = f"thrml {thrml.__version__}, jax {jax.__version__} ({jax.default_backend()})"
        nodes = [thrml.SpinNode() for _ in range(n)]
        ebm = IsingEBM(
            nodes,
            [(nodes[u], nodes[v]) for u, v in edges],
            jnp.asarray(biases, dtype=jnp.float32),
            jnp.asarray(weights, dtype=jnp.float32),
            jnp.asarray(1.0, dtype=jnp.float32),
        )
        classes: dict[int, list] = {}
        for i, c in enumerate(colours):
            classes.setdefault(c, []).append(nodes[i])
        self.blocks = [thrml.Block(classes[c]) for c in sorted(classes)]
        t = time.perf_counter()
        self.program = IsingSamplingProgram(ebm, self.blocks, [])
        self.build_s = time.perf_counter() - t
        self.observed = [thrml.Block([nodes[0]])]
        self.ebm = ebm
        self.hinton_init = hinton_init
        self.key = jax.random.key(seed)
        self.compiled: dict[tuple[int, int], object] = {}
        self.inputs: dict[int, tuple] = {}
        self.compile_s: dict[tuple[int, int], float] = {}

    def _fn(self, chains: int, sweeps: int):
        if (chains, sweeps) not in self.compiled:
            jax, thrml = self.jax, self.thrml
            schedule = thrml.SamplingSchedule(n_warmup=sweeps, n_samples=1, steps_per_sample=1)
            program, observed = self.program, self.observed

            def one_chain(key, init):
                return thrml.sample_states(key, program, schedule, init, [], observed)

            fn = jax.jit(jax.vmap(one_chain))
            keys, init = self._inputs(chains)
            t = time.perf_counter()
            jax.block_until_ready(fn(keys, init))  # compile + first run
            self.compile_s[(chains, sweeps)] = time.perf_counter() - t
            self.compiled[(chains, sweeps)] = fn
        return self.compiled[(chains, sweeps)]

    def _inputs(self, chains: int):
        if chains not in self.inputs:
            jax = self.jax
            k_init, k_run = jax.random.split(jax.random.fold_in(self.key, chains))
            init = self.hinton_init(k_init, self.ebm, self.blocks, (chains,))
            keys = jax.random.split(k_run, chains)
            self.inputs[chains] = (keys, init)
        return self.inputs[chains]

    def runner(self, chains: int):
        def run(sweeps: int, r: int):
            fn = self._fn(chains, sweeps)
            keys, init = self._inputs(chains)
            keys = self.jax.random.split(self.jax.random.fold_in(keys[0], r + 1), chains)
            self.jax.block_until_ready(fn(keys, init))

        return run

    def warm(self, chains: int, sweeps: int) -> float:
        self._fn(chains, sweeps)
        return self.compile_s[(chains, sweeps)]


# --------------------------------------------------------------------------------------
# dwave-samplers
# --------------------------------------------------------------------------------------


class DwavePeer:
    name = "dwave"

    def __init__(self, n, edges, biases, weights, colours, seed):
        import dimod
        from dwave.samplers import SimulatedAnnealingSampler
        import dwave.samplers

        self.version = f"dwave-samplers {dwave.samplers.__version__}"
        h = {i: -float(biases[i]) for i in range(n)}
        J = {(u, v): -float(w) for (u, v), w in zip(edges, weights)}
        t = time.perf_counter()
        self.bqm = dimod.BinaryQuadraticModel.from_ising(h, J)
        self.build_s = time.perf_counter() - t
        self.sampler = SimulatedAnnealingSampler()
        self.seed = seed
        self.sampling_s: list[float] = []

    def runner(self, chains: int):
        def run(sweeps: int, r: int):
            ss = self.sampler.sample(
                self.bqm,
                num_reads=chains,
                beta_schedule_type="custom",
                beta_schedule=[1.0] * sweeps,
                proposal_acceptance_criteria="Gibbs",
                seed=(self.seed * 1_000_003 + 1000 * (r + 1) + chains) % (1 << 32),
            )
            self.sampling_s.append(ss.info["timing"]["sampling_ns"] * 1e-9)

        return run

    def warm(self, chains: int, sweeps: int) -> float:
        t = time.perf_counter()
        self.runner(chains)(sweeps, -1)
        return time.perf_counter() - t


# --------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--topology", default="pegasus14", help="file stem in DATA/topologies/")
    p.add_argument("--chains", default="1,16,256,4096")
    p.add_argument("--peers", default="thrml,dwave")
    p.add_argument("--sweeps", type=int, default=None, help="fixed sweeps per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-seconds", type=float, default=2.0, help="aim of one timed run")
    p.add_argument("--max-sweeps", type=int, default=100000)
    p.add_argument("--min-sweeps", type=int, default=4,
                   help="fewest sweeps per timed run (XLA runs a 1-sweep scan much faster "
                        "than a longer one, which would flatter THRML)")
    p.add_argument("--max-seconds", type=float, default=150.0, help="budget of one point")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--ours", default=None, help="`thrml bench --json` output, for ratios")
    args = p.parse_args()

    import numpy as np

    path = os.path.join(args.data_dir, "topologies", f"{args.topology}.txt")
    if not os.path.isfile(path):
        raise SystemExit(f"error: topology file {path} not found (pass --data-dir DIR)")
    n, edges = read_edge_list(path)
    rng = np.random.default_rng(args.seed)
    biases = rng.standard_normal(n).astype(np.float32)
    weights = rng.standard_normal(len(edges)).astype(np.float32)
    t = time.perf_counter()
    colours = dsatur(n, edges)
    colour_s = time.perf_counter() - t
    n_colours = max(colours) + 1
    chains_list = [int(c) for c in args.chains.split(",") if c]
    info = machine()
    print(
        f"# bench_peers: {args.topology} ({n} spins, {len(edges)} couplers, N(0,1), beta=1, "
        f"{n_colours} DSATUR colours in {colour_s:.2f} s); cpu {info['cpu']}, nproc {info['nproc']}, "
        f"load {info['loadavg']}",
        flush=True,
    )
    peers = []
    for name in args.peers.split(","):
        cls = {"thrml": ThrmlPeer, "dwave": DwavePeer}[name]
        peer = cls(n, edges, biases, weights, colours, args.seed)
        print(f"# {name}: {peer.version}; model/program build {peer.build_s:.2f} s", flush=True)
        peers.append(peer)

    print(
        f"{'peer':<6} {'chains':>6} {'sweeps':>6} {'median_s':>9} {'min_s':>8} {'flips/ns':>9}  notes",
        flush=True,
    )
    results = []
    for peer in peers:
        for chains in chains_list:
            run = peer.runner(chains)
            note = ""
            t0 = time.perf_counter()
            if args.sweeps:
                sweeps = args.sweeps
                first = peer.warm(chains, sweeps)  # compiles (THRML) and warms up
                per_sweep = statistics.median(measure(run, sweeps, 1)) / sweeps
            else:
                # Calibrate: grow the sweeps until a run takes a quarter of the target, then
                # time twice as many sweeps; the difference is the cost of the extra sweeps
                # alone (per-call overhead cancels).
                sweeps = max(1, args.min_sweeps)
                while True:
                    first = peer.warm(chains, sweeps)
                    t_run = statistics.median(measure(run, sweeps, 1))
                    spent = time.perf_counter() - t0
                    if (t_run >= args.target_seconds / 4 or sweeps >= args.max_sweeps
                            or spent + t_run * 8 > args.max_seconds / 2):
                        break
                    grow = max(2, math.ceil(args.target_seconds / 4 / max(t_run, 1e-6)))
                    sweeps = min(args.max_sweeps, sweeps * grow)
                per_sweep = t_run / sweeps
                if (t_run < args.target_seconds / 2
                        and time.perf_counter() - t0 + 3 * t_run < args.max_seconds / 2):
                    peer.warm(chains, 2 * sweeps)
                    t_two = statistics.median(measure(run, 2 * sweeps, 1))
                    # A load spike during the first run can make the difference tiny;
                    # never trust less than half the plain per-sweep time.
                    per_sweep = max((t_two - t_run) / sweeps, 0.5 * t_two / (2 * sweeps))
                sweeps = pick_sweeps(args, per_sweep)
            calib = sweeps if args.sweeps else None
            est = per_sweep * sweeps * (args.repeats + 1)
            spent = time.perf_counter() - t0
            if est + spent > args.max_seconds:
                # Use the most sweeps that still fit, else skip.
                fit = int((args.max_seconds - spent) / (per_sweep * (args.repeats + 1)))
                if fit < args.min_sweeps or args.sweeps:
                    note = f"skipped: ~{per_sweep:.2f} s per sweep exceeds the {args.max_seconds:.0f} s budget"
                    print(f"{peer.name:<6} {chains:>6} {'-':>6} {'-':>9} {'-':>8} {'-':>9}  {note}", flush=True)
                    results.append({"peer": peer.name, "chains": chains, "skipped": note,
                                    "per_sweep_s": per_sweep})
                    continue
                sweeps = fit
                note = f"sweeps cut to fit the {args.max_seconds:.0f} s budget"
            compile_s = first if sweeps == calib else peer.warm(chains, sweeps)
            if hasattr(peer, "sampling_s"):
                peer.sampling_s.clear()
            times = measure(run, sweeps, args.repeats)
            med = statistics.median(times)
            flips = n * chains * sweeps
            rate = flips / (med * 1e9)
            row = {
                "peer": peer.name,
                "version": peer.version,
                "chains": chains,
                "sweeps": sweeps,
                "repeats": args.repeats,
                "times_s": times,
                "median_s": med,
                "min_s": min(times),
                "flips": flips,
                "flips_per_ns": rate,
            }
            if peer.name == "thrml":
                row["compile_and_first_run_s"] = compile_s
                note = (note + "; " if note else "") + f"jit+first run {compile_s:.1f} s"
            if peer.name == "dwave" and peer.sampling_s:
                s = statistics.median(peer.sampling_s)
                row["sampling_ns_median_s"] = s
                row["flips_per_ns_sampling_only"] = flips / (s * 1e9)
                note = (note + "; " if note else "") + f"sampling-only {flips / (s * 1e9):.4f} flips/ns"
            results.append(row)
            print(
                f"{peer.name:<6} {chains:>6} {sweeps:>6} {med:>9.4f} {min(times):>8.4f} {rate:>9.4f}  {note}",
                flush=True,
            )

    info_after = machine()
    doc = {
        "topology": args.topology,
        "nodes": n,
        "edges": len(edges),
        "colours": n_colours,
        "seed": args.seed,
        "machine": info,
        "loadavg_after": info_after["loadavg"],
        "results": results,
    }
    if args.ours:
        with open(args.ours) as f:
            ours = json.load(f)
        mine = {
            r["chains"]: r
            for r in ours["runs"]
            if r["workload"] == args.topology
        }
        print(f"\n# ratios ours / peer ({args.topology}; ours: thrml-rs {ours.get('engine')}, threads {ours.get('threads')})")
        print(f"{'chains':>6} {'ours':>9} " + " ".join(f"{p.name:>9} {'ratio':>7}" for p in peers))
        ratios = []
        for chains in chains_list:
            if chains not in mine:
                continue
            o = mine[chains]["flips_per_ns"]
            cells = []
            entry = {"chains": chains, "ours": o}
            for peer in peers:
                r = next((x for x in results if x["peer"] == peer.name and x["chains"] == chains
                          and "flips_per_ns" in x), None)
                if r is None:
                    cells.append(f"{'-':>9} {'-':>7}")
                    continue
                cells.append(f"{r['flips_per_ns']:>9.4f} {o / r['flips_per_ns']:>7.2f}")
                entry[peer.name] = r["flips_per_ns"]
                entry[f"ours_over_{peer.name}"] = o / r["flips_per_ns"]
            ratios.append(entry)
            print(f"{chains:>6} {o:>9.4f} " + " ".join(cells))
        doc["ratios"] = ratios
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
