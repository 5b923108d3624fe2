//! A layered DAG: `layers` × `width` assets, each depending on up to 3 assets of the
//! previous layer (picked by a fixed linear congruential sequence, so every run is the same).

use phlo_core::graph::AssetNode;
use phlo_core::spec::{AssetKey, AssetSpec};

pub fn key(layer: usize, i: usize) -> String {
    format!("l{layer:04}.a{i:06}")
}

pub fn dag(layers: usize, width: usize) -> Vec<AssetNode> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let provider: std::sync::Arc<str> = "bench".into();
    let mut nodes = Vec::with_capacity(layers * width);
    for l in 0..layers {
        for i in 0..width {
            let mut spec = AssetSpec::new(key(l, i));
            if l > 0 {
                let n = 1 + next() % 3;
                let mut deps: Vec<AssetKey> = Vec::with_capacity(n);
                for _ in 0..n {
                    let d = AssetKey::from(key(l - 1, next() % width));
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
                spec.deps = deps;
            }
            nodes.push(AssetNode::new(spec, provider.clone()));
        }
    }
    nodes
}
