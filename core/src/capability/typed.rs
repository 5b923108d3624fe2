//! Typed capabilities: a capability type is a Rust trait that carries its name.
//!
//! ```
//! pub trait KeyValue: Send + Sync {
//!     fn get(&self, key: &str) -> Option<String>;
//! }
//! phlo_core::capability!(dyn KeyValue = "key_value");
//!
//! use phlo_core::capability::CapabilityType;
//! assert_eq!(<dyn KeyValue as CapabilityType>::NAME, "key_value");
//! ```
//!
//! Resource providers declare what they serve with these types (the compiler checks that
//! the provider implements each trait); run code asks
//! [`RunContext::capability`](crate::spec::RunContext::capability) for `dyn KeyValue` and
//! gets an `Arc<dyn KeyValue>`. Strings in phlo.yaml (`requires: [key_value]`) name the
//! same type.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A capability type: implemented for `dyn Trait` by [`capability!`](crate::capability!).
pub trait CapabilityType: Send + Sync + 'static {
    /// The capability type's name in phlo.yaml, lower snake_case (`table_store`).
    const NAME: &'static str;
}

/// Declares a capability type: `phlo_core::capability!(dyn TableStore = "table_store");`.
/// The trait must have `Send + Sync` as supertraits.
#[macro_export]
macro_rules! capability {
    (dyn $tr:path = $name:literal) => {
        impl $crate::capability::CapabilityType for dyn $tr {
            const NAME: &'static str = $name;
        }
    };
}

/// One capability served by a resource: an `Arc<dyn Trait>` of its capability type.
pub struct Served {
    cap_type: &'static str,
    handle: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served").field("cap_type", &self.cap_type).finish_non_exhaustive()
    }
}

impl Served {
    /// Wraps a capability handle.
    pub fn new<C: ?Sized + CapabilityType>(handle: Arc<C>) -> Self {
        Self { cap_type: C::NAME, handle: Box::new(handle) }
    }

    /// The capability type's name.
    pub fn cap_type(&self) -> &'static str {
        self.cap_type
    }

    /// The handle, when it is of type `C`.
    pub fn get<C: ?Sized + CapabilityType>(&self) -> Option<Arc<C>> {
        self.handle.downcast_ref::<Arc<C>>().cloned()
    }
}

/// Asking for a capability that is not bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "asset `{asset}` asked for the capability `{cap_type}` but does not require it: add `requires: [{cap_type}]` to the asset (or `.require::<dyn …>()` to its spec, or `requires: [dyn …]` to its asset type or check kind)"
)]
pub struct NotRequired {
    /// The asset.
    pub asset: String,
    /// The capability type asked for.
    pub cap_type: &'static str,
}

/// The capabilities bound to one asset, by capability type.
#[derive(Debug, Default)]
pub struct CapabilityMap {
    served: Vec<Served>,
}

impl CapabilityMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the handle of a capability type.
    pub fn insert(&mut self, served: Served) {
        self.served.retain(|s| s.cap_type != served.cap_type);
        self.served.push(served);
    }

    /// Adds a handle of type `C` (tests and embedders).
    #[must_use]
    pub fn with<C: ?Sized + CapabilityType>(mut self, handle: Arc<C>) -> Self {
        self.insert(Served::new(handle));
        self
    }

    /// The handle of capability type `C`, if bound.
    pub fn get<C: ?Sized + CapabilityType>(&self) -> Option<Arc<C>> {
        self.served.iter().find(|s| s.cap_type == C::NAME).and_then(Served::get::<C>)
    }

    /// The bound capability types.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.served.iter().map(|s| s.cap_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Greeter: Send + Sync {
        fn greet(&self) -> String;
    }
    crate::capability!(dyn Greeter = "greeter");
    struct Hello;
    impl Greeter for Hello {
        fn greet(&self) -> String {
            "hello".into()
        }
    }

    #[test]
    fn a_map_hands_out_the_trait_object_by_type() {
        let map = CapabilityMap::new().with::<dyn Greeter>(Arc::new(Hello));
        assert_eq!(map.get::<dyn Greeter>().unwrap().greet(), "hello");
        assert_eq!(map.types().collect::<Vec<_>>(), ["greeter"]);
    }
}
