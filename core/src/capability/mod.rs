//! Capabilities: what providers offer and what plugins and assets require.
//!
//! A capability is `type:name` (`table_store:sqlite`); both parts are lower snake_case.
//! A requirement is either a bare `type` (any provider of that type, chosen by the
//! [`resolver`]) or `type:name` (exactly that provider).
//!
//! ```
//! use phlo_core::capability::Requirement;
//! let r: Requirement = "query_engine:sqlite".parse().unwrap();
//! assert_eq!(r.cap_type(), "query_engine");
//! assert_eq!(r.name(), Some("sqlite"));
//! assert!("Table-Store:".parse::<Requirement>().is_err());
//! ```

pub mod resolver;
pub mod typed;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use resolver::{
    Binding, CapabilityResolver, ProviderEntry, RequirementRow, ResolutionInputs, ResolutionReport, ResolveError, Rule,
};
pub use typed::{CapabilityMap, CapabilityType, NotRequired, Served};

/// Why a capability or requirement string is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// Nothing at all.
    #[error("the requirement is empty")]
    Empty,
    /// `:name` with nothing before the colon.
    #[error("`{input}` has no capability type before `:`")]
    EmptyType {
        /// The whole string.
        input: String,
    },
    /// `type:` with nothing after the colon.
    #[error("`{input}` has nothing after `:`; write `{cap_type}` for any provider or `{cap_type}:<name>` for one")]
    EmptyName {
        /// The whole string.
        input: String,
        /// The part before the colon.
        cap_type: String,
    },
    /// A part that is not lower snake_case.
    #[error("{part} `{value}` in `{input}` is not lower snake_case (a-z, 0-9, `_`, starting with a letter){}",
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    NotSnakeCase {
        /// The whole string.
        input: String,
        /// "type" or "name".
        part: &'static str,
        /// The offending part.
        value: String,
        /// A corrected spelling, when there is an obvious one.
        suggestion: Option<String>,
    },
}

/// Whether `s` is lower snake_case: `[a-z][a-z0-9_]*`.
pub fn is_snake_case(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn snake_suggestion(s: &str) -> Option<String> {
    let fixed: String =
        s.trim().chars().map(|c| if c == '-' || c == ' ' || c == '.' { '_' } else { c.to_ascii_lowercase() }).collect();
    is_snake_case(&fixed).then_some(fixed)
}

fn check_part(input: &str, part: &'static str, value: &str) -> Result<(), RequirementError> {
    if is_snake_case(value) {
        Ok(())
    } else {
        Err(RequirementError::NotSnakeCase {
            input: input.to_string(),
            part,
            value: value.to_string(),
            suggestion: snake_suggestion(value).map(|v| input.replacen(value, &v, 1)),
        })
    }
}

/// A concrete capability a provider offers: `type:name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Capability {
    cap_type: String,
    name: String,
}

impl Capability {
    /// Parses `type:name`; both parts must be present and lower snake_case.
    ///
    /// # Errors
    /// A [`RequirementError`] saying what is wrong with the string.
    pub fn parse(s: &str) -> Result<Self, RequirementError> {
        let r = Requirement::parse(s)?;
        match r.name {
            Some(name) => Ok(Self { cap_type: r.cap_type, name }),
            None => Err(RequirementError::EmptyName { input: s.to_string(), cap_type: r.cap_type }),
        }
    }

    /// The type part (`table_store`).
    pub fn cap_type(&self) -> &str {
        &self.cap_type
    }

    /// The name part (`sqlite`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.cap_type, self.name)
    }
}

/// What a plugin or asset needs: a capability type, optionally one named provider of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    cap_type: String,
    name: Option<String>,
    optional: bool,
}

impl Requirement {
    /// Parses `type` or `type:name`, splitting on the first colon.
    ///
    /// # Errors
    /// A [`RequirementError`] saying what is wrong with the string.
    pub fn parse(s: &str) -> Result<Self, RequirementError> {
        if s.is_empty() {
            return Err(RequirementError::Empty);
        }
        let (t, n) = match s.split_once(':') {
            Some((t, n)) => (t, Some(n)),
            None => (s, None),
        };
        if t.is_empty() {
            return Err(RequirementError::EmptyType { input: s.to_string() });
        }
        check_part(s, "type", t)?;
        if let Some(n) = n {
            if n.is_empty() {
                return Err(RequirementError::EmptyName { input: s.to_string(), cap_type: t.to_string() });
            }
            check_part(s, "name", n)?;
        }
        Ok(Self { cap_type: t.to_string(), name: n.map(str::to_string), optional: false })
    }

    /// A requirement for any provider of `cap_type`.
    ///
    /// # Errors
    /// When `cap_type` is not lower snake_case.
    pub fn of_type(cap_type: &str) -> Result<Self, RequirementError> {
        check_part(cap_type, "type", cap_type)?;
        Ok(Self { cap_type: cap_type.to_string(), name: None, optional: false })
    }

    /// Marks the requirement optional: if it does not resolve, that is a warning.
    #[must_use]
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// The capability type.
    pub fn cap_type(&self) -> &str {
        &self.cap_type
    }

    /// The provider name, when the requirement names one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether an unresolved requirement is only a warning.
    pub fn is_optional(&self) -> bool {
        self.optional
    }
}

impl FromStr for Requirement {
    type Err = RequirementError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}:{}", self.cap_type, n),
            None => f.write_str(&self.cap_type),
        }
    }
}

impl Serialize for Requirement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let r = Requirement::parse("table_store").unwrap();
        assert_eq!((r.cap_type(), r.name()), ("table_store", None));
        let r = Requirement::parse("query_engine:duck_db2").unwrap();
        assert_eq!((r.cap_type(), r.name()), ("query_engine", Some("duck_db2")));
        assert_eq!(r.to_string(), "query_engine:duck_db2");
    }

    #[test]
    fn malformed_requirements_say_what_is_wrong() {
        let e = Requirement::parse("Table-Store:").unwrap_err();
        assert!(matches!(&e, RequirementError::NotSnakeCase { part: "type", .. }), "{e}");
        assert!(e.to_string().contains("did you mean `table_store:`"), "{e}");
        let e = Requirement::parse("table_store:").unwrap_err();
        assert!(e.to_string().contains("nothing after `:`"), "{e}");
        assert!(matches!(Requirement::parse(":x").unwrap_err(), RequirementError::EmptyType { .. }));
        let e = Requirement::parse("a b").unwrap_err();
        assert!(e.to_string().contains("did you mean `a_b`"), "{e}");
        assert_eq!(Requirement::parse("").unwrap_err(), RequirementError::Empty);
        // split on the first colon: the name `b:c` is not snake_case
        let e = Requirement::parse("a:b:c").unwrap_err();
        assert!(matches!(&e, RequirementError::NotSnakeCase { part: "name", value, .. } if value == "b:c"), "{e}");
        assert!(Requirement::parse("1abc").is_err());
    }

    #[test]
    fn capabilities_need_a_name() {
        assert_eq!(Capability::parse("table_store:sqlite").unwrap().to_string(), "table_store:sqlite");
        assert!(matches!(Capability::parse("table_store").unwrap_err(), RequirementError::EmptyName { .. }));
    }
}
