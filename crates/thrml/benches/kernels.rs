//! Micro-benchmarks of the kernel building blocks: `cargo bench -p thrml --bench kernels`.
//!
//! Every benchmark reports elements per second; ns per element is its inverse. Build with
//! `RUSTFLAGS="-C target-cpu=native"` to see the AVX2/AVX-512 code paths.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use thrml::kernels::aes::{BlockUpdate, WordKey, fill_words};
use thrml::kernels::math::{
    fill_prob_up, fill_spins, sample_softmax, sample_softmax_chains, sigmoid2,
};

/// Items per batch: 4 nodes × 1024 chains, a typical L1-resident tile.
const N: usize = 4096;

fn inputs() -> (Vec<f32>, Vec<u32>) {
    let mut words = vec![0u32; N];
    fill_words(
        &WordKey::from_seed(1),
        BlockUpdate::new(0, 0),
        0..4,
        0..1024,
        &mut words,
    );
    let gamma = words
        .iter()
        .map(|&w| (w as f32 / u32::MAX as f32 - 0.5) * 8.0)
        .collect();
    (gamma, words)
}

fn words(c: &mut Criterion) {
    let mut g = c.benchmark_group("words");
    g.throughput(Throughput::Elements(N as u64));
    let key = &WordKey::from_seed(1);
    g.bench_function("encrypt one counter (per word)", |b| {
        let mut out = vec![0u32; N];
        b.iter(|| {
            // Opaque counter words, as in a real sweep.
            let hi = black_box([3u32, 7, 0]);
            for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&key.encrypt([i as u32, hi[0], hi[1], hi[2]]));
            }
            black_box(&mut out);
        });
    });
    g.bench_function("fill_words 4 nodes x 1024 chains (per word)", |b| {
        let mut out = vec![0u32; N];
        let mut sweep = 0;
        b.iter(|| {
            sweep += 1;
            fill_words(key, BlockUpdate::new(sweep, 0), 0..4, 0..1024, &mut out);
            black_box(&mut out);
        });
    });
    g.bench_function("fill_words 4096 nodes x 1 chain (per word)", |b| {
        let mut out = vec![0u32; N];
        let mut sweep = 0;
        b.iter(|| {
            sweep += 1;
            fill_words(key, BlockUpdate::new(sweep, 0), 0..N as u64, 0..1, &mut out);
            black_box(&mut out);
        });
    });
    g.finish();
}

fn sigmoid_and_spins(c: &mut Criterion) {
    let (gamma, words) = inputs();
    let mut g = c.benchmark_group("spin");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sigmoid2 scalar loop (per sigmoid)", |b| {
        b.iter(|| black_box(&gamma).iter().map(|&x| sigmoid2(x)).sum::<f32>());
    });
    g.bench_function("fill_prob_up (per sigmoid)", |b| {
        let mut out = vec![0.0f32; N];
        b.iter(|| fill_prob_up(black_box(&gamma), &mut out));
    });
    g.bench_function("f64 reference 1/(1+exp(-2g)) (per sigmoid)", |b| {
        let mut out = vec![0.0f64; N];
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(&gamma)) {
                *o = 1.0 / (1.0 + (-2.0 * f64::from(x)).exp());
            }
        });
    });
    g.bench_function("fill_spins (per spin decision)", |b| {
        let mut out = vec![false; N];
        b.iter(|| fill_spins(black_box(&gamma), black_box(&words), &mut out));
    });
    g.bench_function("fill_words + fill_spins (per spin decision)", |b| {
        let mut out = vec![false; N];
        let mut w = vec![0u32; N];
        let mut sweep = 0;
        b.iter(|| {
            sweep += 1;
            fill_words(
                &WordKey::from_seed(2),
                BlockUpdate::new(sweep, 0),
                0..4,
                0..1024,
                &mut w,
            );
            fill_spins(black_box(&gamma), &w, &mut out);
        });
    });
    g.finish();
}

fn softmax(c: &mut Criterion) {
    const K: usize = 5;
    let (gamma, words) = inputs();
    let chains = N / 8;
    // Chain-minor logits for `chains` chains, and the same logits chain-major.
    let theta_cm: Vec<f32> = gamma[..K * chains].to_vec();
    let theta_rows: Vec<[f32; K]> = (0..chains)
        .map(|i| std::array::from_fn(|k| theta_cm[k * chains + i]))
        .collect();
    let mut g = c.benchmark_group("softmax");
    g.throughput(Throughput::Elements(chains as u64));
    g.bench_function("sample_softmax K=5 (per draw)", |b| {
        let mut out = vec![0usize; chains];
        b.iter(|| {
            for ((o, row), &w) in out.iter_mut().zip(&theta_rows).zip(&words) {
                *o = sample_softmax(black_box(row), w);
            }
        });
    });
    g.bench_function("sample_softmax_chains K=5 (per draw)", |b| {
        let mut out = vec![0u8; chains];
        b.iter(|| sample_softmax_chains(black_box(&theta_cm), &words[..chains], &mut out));
    });
    g.finish();
}

criterion_group!(benches, words, sigmoid_and_spins, softmax);
criterion_main!(benches);
