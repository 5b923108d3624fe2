//! Work shared among the cores. Loading a project of many assets reads and builds each
//! asset on its own, so the list is cut into one chunk per core.

/// `f` over consecutive chunks of `items`, one per core (at most 8), the results in the
/// order of the chunks. Fewer than `from` items are done in one piece on this thread.
/// A panic in `f` is raised again here.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], from: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    if workers < 2 || items.len() < from.max(2) {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(items.len().div_ceil(workers));
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks.map(|c| scope.spawn(move || f(c))).collect();
        let mut results = Vec::with_capacity(handles.len() + 1);
        results.push(f(first));
        for h in handles {
            results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        results
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_keep_their_order_and_cover_every_item() {
        let items: Vec<u32> = (0..10_007).collect();
        for from in [0, 1, 100_000] {
            let parts = super::map_chunks(&items, from, <[u32]>::to_vec);
            assert_eq!(parts.concat(), items);
        }
        assert_eq!(super::map_chunks(&[] as &[u32], 0, <[u32]>::len), vec![0]);
    }
}
