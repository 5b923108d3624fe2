//! phlo-core: the framework every phlo crate depends on.
//!
//! Modules in layer order: each imports only from the ones listed before it (a test keeps
//! it so; `docs/architecture.md` explains why).
//!
//! * [`diagnostic`] — errors with a location, a fix and a stable code;
//! * [`source`] — the positioned syntax tree of config files, typed reading, `${VAR}`;
//! * [`capability`] — capabilities, requirements, the resolver, typed capability traits;
//! * [`data`] — `TableStore` and `QueryEngine`, the capability traits for tables and SQL;
//! * [`spec`] — asset specs, partitions, retry policies, checks, run functions;
//! * [`graph`] — the asset graph and the selection language;
//! * [`schedule`] — cron schedules;
//! * [`hooks`] — lifecycle events and the hook bus;
//! * [`execution`] — run requests and reports;
//! * [`plugin`] — one trait per plugin kind, descriptors and the registry;
//! * [`config`] — the `phlo.yaml` / `phlo.toml` model;
//! * [`schema`] — the JSON Schema of the project file;
//! * [`project`] — loading a project through every phase, and preparing runs.
//!
//! Plugin crates depend on this crate only and register with [`register!`].

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
pub mod source;
pub mod spec;

/// Re-exported so plugin crates need no direct dependency on `inventory`.
pub use inventory;
