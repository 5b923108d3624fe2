//! The scheduler: a plain data structure (no runtime) deciding what may run next.
//!
//! Nodes become ready when all their deps succeeded; among the ready, the lowest index
//! runs first (the executor numbers nodes by topological position, then partition), so the
//! order is deterministic. A failure skips every node downstream of it, each naming the failure
//! that caused it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Ready,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

/// What the scheduler knows about every node.
#[derive(Debug)]
pub struct Scheduler {
    /// Node `i`'s dependents are `dependents[first[i]..first[i + 1]]`.
    first: Vec<usize>,
    dependents: Vec<usize>,
    waiting: Vec<u32>,
    state: Vec<State>,
    ready: BinaryHeap<Reverse<usize>>,
    running: usize,
    open: usize,
}

impl Scheduler {
    /// `n` nodes; `edges` are `(dep, node)` pairs. Ready nodes start lowest index first.
    pub fn new(n: usize, edges: &[(usize, usize)]) -> Self {
        let mut first = vec![0usize; n + 1];
        let mut waiting = vec![0u32; n];
        for &(dep, node) in edges {
            first[dep + 1] += 1;
            waiting[node] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut dependents = vec![0usize; edges.len()];
        for &(dep, node) in edges {
            dependents[fill[dep]] = node;
            fill[dep] += 1;
        }
        let mut s = Self {
            first,
            dependents,
            waiting,
            state: vec![State::Waiting; n],
            ready: BinaryHeap::new(),
            running: 0,
            open: n,
        };
        for i in 0..n {
            if s.waiting[i] == 0 {
                s.make_ready(i);
            }
        }
        s
    }

    fn dependents_of(&self, i: usize) -> &[usize] {
        &self.dependents[self.first[i]..self.first[i + 1]]
    }

    fn make_ready(&mut self, i: usize) {
        self.state[i] = State::Ready;
        self.ready.push(Reverse(i));
    }

    /// The next node to start, if one is ready; it is then running.
    pub fn start_next(&mut self) -> Option<usize> {
        let Reverse(i) = self.ready.pop()?;
        self.state[i] = State::Running;
        self.running += 1;
        Some(i)
    }

    /// Records a success; dependents whose deps all succeeded become ready.
    pub fn succeed(&mut self, i: usize) {
        self.finish(i, State::Succeeded);
        for k in self.first[i]..self.first[i + 1] {
            let d = self.dependents[k];
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 && self.state[d] == State::Waiting {
                self.make_ready(d);
            }
        }
    }

    /// Records a failure; returns every node downstream that is now skipped (in order).
    pub fn fail(&mut self, i: usize) -> Vec<usize> {
        self.finish(i, State::Failed);
        let mut skipped = Vec::new();
        let mut stack = self.dependents_of(i).to_vec();
        while let Some(d) = stack.pop() {
            if matches!(self.state[d], State::Waiting | State::Ready) {
                self.state[d] = State::Skipped;
                self.open -= 1;
                skipped.push(d);
                stack.extend_from_slice(self.dependents_of(d));
            }
        }
        // a node could have been made ready before: drop it from the queue lazily
        self.ready.retain(|Reverse(n)| self.state[*n] == State::Ready);
        skipped.sort_unstable();
        skipped
    }

    /// Cancels everything not yet started; returns those nodes (in order).
    pub fn cancel_pending(&mut self) -> Vec<usize> {
        let out: Vec<usize> =
            (0..self.state.len()).filter(|&i| matches!(self.state[i], State::Waiting | State::Ready)).collect();
        for &i in &out {
            self.state[i] = State::Cancelled;
            self.open -= 1;
        }
        self.ready.clear();
        out
    }

    /// Records that a running node ended because the run was cancelled.
    pub fn cancelled(&mut self, i: usize) {
        self.finish(i, State::Cancelled);
    }

    fn finish(&mut self, i: usize, to: State) {
        debug_assert_eq!(self.state[i], State::Running, "node {i} finished without running");
        self.state[i] = to;
        self.running -= 1;
        self.open -= 1;
    }

    /// How many nodes are ready to start.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// How many nodes are running.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether nothing is left to run or running.
    pub fn is_done(&self) -> bool {
        self.open == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Scheduler) -> Vec<usize> {
        std::iter::from_fn(|| s.start_next()).collect()
    }

    #[test]
    fn diamond_runs_in_index_order() {
        // 0 → 2, 0 → 1, 2 → 3, 1 → 3: ready nodes start lowest index first
        let mut s = Scheduler::new(4, &[(0, 2), (0, 1), (2, 3), (1, 3)]);
        assert_eq!(drain(&mut s), [0]);
        s.succeed(0);
        assert_eq!(drain(&mut s), [1, 2]);
        s.succeed(2);
        assert_eq!(drain(&mut s), Vec::<usize>::new());
        s.succeed(1);
        assert_eq!(drain(&mut s), [3]);
        s.succeed(3);
        assert!(s.is_done());
    }

    #[test]
    fn a_failure_skips_everything_downstream_only() {
        // 0 → 1 → 2, 0 → 3, 4 independent
        let mut s = Scheduler::new(5, &[(0, 1), (1, 2), (0, 3)]);
        assert_eq!(drain(&mut s), [0, 4]);
        s.succeed(0);
        assert_eq!(drain(&mut s), [1, 3]);
        assert_eq!(s.fail(1), [2]);
        s.succeed(3);
        s.succeed(4);
        assert!(s.is_done());
    }

    #[test]
    fn a_node_with_two_failed_upstreams_is_skipped_once() {
        let mut s = Scheduler::new(3, &[(0, 2), (1, 2)]);
        drain(&mut s);
        assert_eq!(s.fail(0), [2]);
        assert_eq!(s.fail(1), Vec::<usize>::new());
        assert!(s.is_done());
    }

    #[test]
    fn cancelling_leaves_running_nodes_to_finish() {
        let mut s = Scheduler::new(3, &[(0, 1)]);
        assert_eq!(s.start_next(), Some(0));
        assert_eq!(s.cancel_pending(), [1, 2]);
        assert!(!s.is_done());
        s.cancelled(0);
        assert!(s.is_done());
    }
}
