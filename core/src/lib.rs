//! phlo-core: the framework every phlo crate depends on.
//!
//! * [`plugin`] — descriptors, kinds, metadata and the registry built from `inventory`;
//! * [`capability`] — capabilities, requirements and the resolver with its report;
//! * [`data`] — `TableStore` and `QueryEngine`, the capability traits for tables and SQL;
//! * [`config`] — the `phlo.yaml` / `phlo.toml` model, env expansion, typed plugin configs;
//! * [`spec`] — asset specs, partitions, retry policies, checks, run functions;
//! * [`graph`] — the asset graph and the selection language;
//! * [`hooks`] — lifecycle events and the hook bus;
//! * [`execution`] — run requests and reports, cancellation;
//! * [`project`] — loading a project through every phase;
//! * [`diagnostic`] — errors with a location, a fix and a stable code.
//!
//! Plugin crates depend on this crate only and register with [`submit_plugin!`].

pub mod capability;
pub mod config;
pub mod data;
pub mod diagnostic;
pub mod execution;
pub mod graph;
pub mod hooks;
pub mod plugin;
pub mod project;
pub mod schedule;
pub mod schema;
pub mod spec;

/// Re-exported so plugin crates need no direct dependency on `inventory`.
pub use inventory;
