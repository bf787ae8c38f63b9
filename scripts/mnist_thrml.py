#!/usr/bin/env python3
"""THRML (the Python/JAX peer) on the MNIST recipe of `crates/thrml/examples/mnist.rs`.

The same recipe, the same data split, run with THRML's own Ising training helpers:

* graph: a double grid, two 40x40 torus layers; every upper node (i, j) couples to the
  lower nodes at (i, j) and at distance d in the 4 directions, d in {1, 4, 15}
  (3,200 spins, 20,800 edges, none inside a layer);
* visible: 814 upper nodes chosen at random from the seed (numpy's generator here, so the
  choice differs from the Rust run's): 784 pixels, then 30 label spins, 10 repeats of a
  one-hot over the classes 0, 3, 4;
* data: ../shared/data/mnist034/digit_{0,3,4}.npy, the first 80% of each digit for training,
  the last 20% for testing; training items shuffled each epoch from the seed;
* recipe: Adam (lr 0.01, betas 0.9/0.999, eps 1e-8) on biases and weights, both starting
  at zero, beta = 1; positive phase batch 50 (one chain per item), schedule (200, 20, 10);
  negative phase 25 chains, schedule (200, 40, 5); fresh hinton_init chains every step;
* classifier: clamp the 784 pixels of a test image, sample everything else with schedule
  (400, 40, 10), average the 30 label spins per class, take the argmax.

After every epoch it prints the test accuracy; it stops at the first epoch whose accuracy
is at least --target (or after --epochs) and prints `accuracy <x>` last. Timings: `train_s`
is the time spent in training steps (JIT compilation included, it happens in the first
step), `eval_s` the time of the evaluations.

    /work/peers/bin/python scripts/mnist_thrml.py --data-dir ../shared/data --seed 0
"""

import argparse
import os
import sys
import time

import numpy as np


def load(data_dir, frac=0.8):
    train_x, train_y, test_x, test_y = [], [], [], []
    for label, digit in enumerate([0, 3, 4]):
        x = np.load(os.path.join(data_dir, "mnist034", f"digit_{digit}.npy")).astype(bool)
        n_train = int(len(x) * frac)
        train_x.append(x[:n_train])
        test_x.append(x[n_train:])
        train_y += [label] * n_train
        test_y += [label] * (len(x) - n_train)
    return (
        np.concatenate(train_x),
        np.array(train_y),
        np.concatenate(test_x),
        np.array(test_y),
    )


def double_grid(side=40, distances=(1, 4, 15)):
    layer = side * side
    edges = set()
    for i in range(side):
        for j in range(side):
            u = i * side + j
            lower = lambda r, c: layer + (r % side) * side + (c % side)
            edges.add((u, lower(i, j)))
            for d in distances:
                for r, c in ((i - d, j), (i + d, j), (i, j - d), (i, j + d)):
                    edges.add((u, lower(r, c)))
    return 2 * layer, sorted(edges)


def labels_to_spins(y, n_classes=3, repeats=10):
    onehot = np.eye(n_classes, dtype=bool)[y]  # [n, 3]
    return np.tile(onehot, (1, repeats))  # spin k is class k % 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--target", type=float, default=0.90)
    ap.add_argument("--small", action="store_true", help="a tiny run that only checks the script")
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import equinox as eqx
    import thrml
    from thrml.models.ising import IsingEBM, IsingSamplingProgram, IsingTrainingSpec
    from thrml.models.ising import estimate_kl_grad, estimate_moments, hinton_init

    print(f"thrml {thrml.__version__}, jax {jax.__version__}, devices {jax.devices()}", flush=True)
    train_x, train_y, test_x, test_y = load(args.data_dir)
    if args.small:
        train_x, train_y = train_x[::20], train_y[::20]
        test_x, test_y = test_x[::20], test_y[::20]
    train_v = np.concatenate([train_x, labels_to_spins(train_y)], axis=1)

    n, edges = double_grid()
    rng = np.random.default_rng(args.seed)
    upper = np.arange(1600)
    visible = rng.choice(upper, size=814, replace=False)
    pixels, label_ids = visible[:784], visible[784:]
    vis_set = set(visible.tolist())
    upper_latent = [u for u in upper if u not in vis_set]
    lower = list(range(1600, 3200))

    nodes = [thrml.SpinNode() for _ in range(n)]
    edge_nodes = [(nodes[a], nodes[b]) for a, b in edges]
    B = thrml.Block
    data_block = B([nodes[i] for i in visible])
    pos_blocks = [B([nodes[i] for i in upper_latent]), B([nodes[i] for i in lower])]
    neg_blocks = [B([nodes[i] for i in upper]), B([nodes[i] for i in lower])]
    cls_free = [B([nodes[i] for i in upper if i not in set(pixels.tolist())]), B([nodes[i] for i in lower])]
    pixel_block = B([nodes[i] for i in pixels])
    label_nodes = [nodes[i] for i in label_ids]

    sched_pos = thrml.SamplingSchedule(200, 20, 10)
    sched_neg = thrml.SamplingSchedule(200, 40, 5)
    sched_cls = thrml.SamplingSchedule(400, 40, 10)
    batch, n_neg = 50, 25
    if args.small:
        sched_pos = thrml.SamplingSchedule(5, 2, 2)
        sched_neg = thrml.SamplingSchedule(5, 2, 2)
        sched_cls = thrml.SamplingSchedule(5, 2, 2)
        batch, n_neg = 10, 5
    beta = jnp.array(1.0)

    def ebm_of(b, w):
        return IsingEBM(nodes, edge_nodes, b, w, beta)

    @eqx.filter_jit
    def step(key, params, opt, data):
        b, w = params
        ebm = ebm_of(b, w)
        spec = IsingTrainingSpec(ebm, [data_block], [], pos_blocks, neg_blocks, sched_pos, sched_neg)
        k_pos, k_neg, k_grad = jax.random.split(key, 3)
        init_pos = hinton_init(k_pos, ebm, pos_blocks, (1, data.shape[0]))
        init_neg = hinton_init(k_neg, ebm, neg_blocks, (n_neg,))
        gw, gb, _, _ = estimate_kl_grad(k_grad, spec, nodes, edge_nodes, [data], [], init_pos, init_neg)
        grads = (gb, gw)
        t, m, v = opt
        t = t + 1
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        params = jax.tree.map(lambda p, m, v: p - 0.01 * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), params, m, v)
        return params, (t, m, v)

    @eqx.filter_jit
    def classify(key, params, images):
        b, w = params
        ebm = ebm_of(b, w)
        program = IsingSamplingProgram(ebm, cls_free, [pixel_block])
        k_init, k_run = jax.random.split(key)
        init = hinton_init(k_init, ebm, cls_free, (images.shape[0],))
        keys = jax.random.split(k_run, images.shape[0])

        def one(k, i0, i1, img):
            m, _ = estimate_moments(k, label_nodes, [(label_nodes[0], label_nodes[1])], program, sched_cls, [i0, i1], [img])
            return m

        means = jax.vmap(one)(keys, init[0], init[1], images)  # [images, 30]
        per_class = means.reshape(means.shape[0], 10, 3).mean(axis=1)
        return jnp.argmax(per_class, axis=1)

    params = (jnp.zeros(n), jnp.zeros(len(edges)))
    opt = (0, jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))
    key = jax.random.key(args.seed)
    steps_per_epoch = len(train_v) // batch
    train_s = eval_s = 0.0
    acc = 0.0
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(train_v))
        t0 = time.perf_counter()
        for k in range(steps_per_epoch):
            rows = order[k * batch : (k + 1) * batch]
            key, sk = jax.random.split(key)
            params, opt = step(sk, params, opt, jnp.asarray(train_v[rows]))
        jax.block_until_ready(params)
        train_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        key, ck = jax.random.split(key)
        pred = np.asarray(classify(ck, params, jnp.asarray(test_x)))
        eval_s += time.perf_counter() - t0
        acc = float(np.mean(pred == test_y))
        print(
            f"epoch {epoch + 1}: {steps_per_epoch} steps, test accuracy {acc:.4f}, "
            f"train_s {train_s:.1f}, eval_s {eval_s:.1f}",
            flush=True,
        )
        if acc >= args.target:
            break
    print(f"train_s {train_s:.2f} eval_s {eval_s:.2f} epochs {epoch + 1}")
    print(f"accuracy {acc:.4f}")


if __name__ == "__main__":
    sys.exit(main())
