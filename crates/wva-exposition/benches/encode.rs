//! Encoding cost of `/metrics` at fleet scale (spec/exposition.md §11: 1000 variants < 5 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wva_core::Reason;
use wva_exposition::{Exposition, ExpositionConfig, MetricsNaming, PublishedVariant, VariantKey};

/// 1000 variants over 50 namespaces, each having scaled once.
fn fleet(desired_offset: u32) -> Vec<PublishedVariant> {
    (0..1000u32)
        .map(|i| {
            PublishedVariant::new(
                VariantKey::new(
                    format!("team-{}", i % 50),
                    format!("vllm-model-{i:04}-h100"),
                ),
                "H100",
                2,
                2 + desired_offset + i % 3,
                Reason::KvCacheSaturation,
            )
            .with_baseline(2)
        })
        .collect()
}

fn bench_encode(c: &mut Criterion) {
    for (label, naming) in [
        ("inferno", MetricsNaming::Inferno),
        ("both", MetricsNaming::Both),
    ] {
        let exposition = Exposition::new(ExpositionConfig {
            naming,
            controller_instance: Some("shard-a".into()),
            ..ExpositionConfig::default()
        })
        .expect("registry");
        exposition.publish(&fleet(0));
        exposition.publish(&fleet(1));
        c.bench_function(&format!("encode_1000_variants_{label}"), |b| {
            b.iter(|| black_box(exposition.encode()))
        });
    }
    let exposition = Exposition::new(ExpositionConfig::default()).expect("registry");
    let cycles = [fleet(0), fleet(1)];
    let mut n = 0usize;
    c.bench_function("publish_1000_variants", |b| {
        b.iter(|| {
            n += 1;
            black_box(exposition.publish(&cycles[n % 2]))
        })
    });
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
