//! Capability resolution: 1,000 requirements against 100 providers (target ≤ 100 µs total).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use phlo_core::capability::{CapabilityResolver, ProviderEntry, Requirement, ResolutionInputs, ResolutionReport};
use phlo_core::config::Spanned;

/// 100 providers over 40 types: types 0–19 have 4 providers each (need a default or a
/// tag), types 20–39 have one each (sole provider).
fn providers() -> Vec<ProviderEntry> {
    let mut v = Vec::new();
    for t in 0..20 {
        for n in 0..4 {
            v.push(ProviderEntry::new(format!("type_{t}:impl_{n}"), format!("plugin_{t}_{n}")));
        }
    }
    for t in 20..40 {
        v.push(ProviderEntry::new(format!("type_{t}:only"), format!("plugin_{t}")));
    }
    v
}

/// 1,000 requirements: bare types decided by defaults, tags, the sole provider, and
/// explicit `type:name` ones.
fn requirements() -> Vec<Requirement> {
    (0..1000)
        .map(|i| {
            let s = match i % 4 {
                0 => format!("type_{}", i % 20),
                1 => format!("type_{}", 20 + i % 20),
                2 => format!("type_{}:impl_{}", i % 20, i % 4),
                _ => format!("type_{}", i % 10),
            };
            Requirement::parse(&s).unwrap()
        })
        .collect()
}

fn inputs() -> ResolutionInputs {
    let mut inputs = ResolutionInputs::default();
    for t in 0..20 {
        inputs.config_defaults.insert(format!("type_{t}"), Spanned::unlocated(format!("impl_{}", t % 4)));
    }
    for t in 0..5 {
        inputs.run_tags.insert(format!("phlo/capability/type_{t}"), "impl_3".into());
    }
    inputs.env_defaults.insert("type_7".into(), "impl_2".into());
    inputs
}

fn bench(c: &mut Criterion) {
    let resolver = CapabilityResolver::new(providers()).unwrap();
    let reqs = requirements();
    let inputs = inputs();
    let prepared = inputs.prepare();
    let overrides: BTreeMap<String, Spanned<String>> = BTreeMap::new();

    c.bench_function("resolve 1000 requirements / 100 providers", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for r in &reqs {
                if resolver.resolve(black_box(r), Some(&overrides), &prepared).is_ok() {
                    ok += 1;
                }
            }
            assert_eq!(ok, 1000);
            ok
        });
    });

    let by: std::sync::Arc<str> = std::sync::Arc::from("asset bench");
    c.bench_function("resolve 1000 requirements / 100 providers, with report", |b| {
        b.iter(|| {
            let mut report = ResolutionReport::default();
            for r in &reqs {
                let result = resolver.resolve(black_box(r), Some(&overrides), &prepared);
                report.record(r, &by, &result, &prepared);
            }
            report
        });
    });

    c.bench_function("index 100 providers + prepare inputs", |b| {
        b.iter(|| (CapabilityResolver::new(black_box(providers())).unwrap(), inputs.prepare()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
