//! Peak memory of building the 1,000,000-asset layered graph (target ≤ 500 MB), measured
//! in a process of its own: the specs as providers hand them over, plus the graph.

#[path = "support/layered.rs"]
mod layered;

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep it cheap there.
    let full = std::env::args().any(|a| a == "--bench");
    let (layers, width) = if full { (1000, 1000) } else { (10, 100) };
    let before = peak_rss_mb();
    let start = std::time::Instant::now();
    let nodes = layered::dag(layers, width);
    let generated = start.elapsed();
    let (graph, errors) = phlo_core::graph::AssetGraph::build(nodes);
    let built = start.elapsed() - generated;
    assert!(errors.is_empty() && graph.topological_order().is_some());
    println!(
        "graph_memory: {} assets; generating specs {:.0} ms, build+validate+toposort {:.0} ms; peak RSS {:.0} MB (at start {:.0} MB)",
        graph.len(),
        generated.as_secs_f64() * 1e3,
        built.as_secs_f64() * 1e3,
        peak_rss_mb().unwrap_or(f64::NAN),
        before.unwrap_or(f64::NAN),
    );
}
