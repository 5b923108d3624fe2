//! The positioned syntax of configuration files: a [`Node`] tree where every value keeps
//! its `file:line:col`, a serde deserializer over it that reports every error with that
//! position ([`de`]), and `${VAR}` expansion ([`env`]).
//!
//! This layer knows nothing of what a project file means; [`crate::config`] reads the
//! project model from it, and plugins read their typed configs from it.

pub mod de;
pub mod env;
pub mod node;
pub mod yaml;

pub use de::{Spanned, from_node};
pub use node::{Format, Key, Node, Value};
