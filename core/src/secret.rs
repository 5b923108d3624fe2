//! Secrets in plugin configs: a [`Secret`] holds a token, password or key that never prints.
//!
//! In phlo.yaml a secret is written as a reference — `env:NAME` (an environment variable),
//! `file:PATH` (a file of the project, its content without the trailing newline), or
//! `<scheme>:<reference>` of a resolver a plugin registers with
//! [`secret_resolver!`](crate::secret_resolver) (a vault) — or as `${NAME}`, which phlo.yaml's
//! expansion resolves when the project loads. Its `Debug`, `Display` and `Serialize` print a
//! mask (with the reference, which is not secret); [`Secret::expose`] is the only way to the
//! value, and [`redact`] removes known values from any text that leaves a plugin (errors, log
//! lines, event fields).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A resolver of secret references `<scheme>:<reference>`, registered at compile time.
#[derive(Debug)]
pub struct SecretResolver {
    /// The scheme before the colon (`env`, `file`, `vault`).
    pub scheme: &'static str,
    /// What it reads.
    pub description: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// Resolves a reference (the text after `<scheme>:`) for a project directory: the value,
    /// or why not (never the value itself).
    pub resolve: fn(&str, &Path) -> Result<String, String>,
}

inventory::collect!(SecretResolver);

/// Registers a secret resolver: `phlo_core::secret_resolver!("vault", "HashiCorp Vault KV", resolve_fn);`.
#[macro_export]
macro_rules! secret_resolver {
    ($scheme:literal, $description:literal, $resolve:path) => {
        $crate::inventory::submit! {
            $crate::secret::SecretResolver {
                scheme: $scheme,
                description: $description,
                crate_name: env!("CARGO_PKG_NAME"),
                resolve: $resolve,
            }
        }
    };
}

fn from_env(name: &str, _: &Path) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("the environment variable `{name}` is empty")),
        Err(_) => Err(format!("the environment variable `{name}` is not set")),
    }
}

fn from_file(path: &str, project: &Path) -> Result<String, String> {
    let full = project.join(path);
    match std::fs::read_to_string(&full) {
        Ok(text) => {
            let v = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            if v.is_empty() { Err(format!("the file `{path}` is empty")) } else { Ok(v.to_string()) }
        }
        Err(e) => Err(format!("cannot read the file `{path}`: {e}")),
    }
}

crate::secret_resolver!("env", "an environment variable: `env:NAME`", from_env);
crate::secret_resolver!("file", "a file of the project, without its trailing newline: `file:PATH`", from_file);

/// Every registered resolver, by scheme.
pub fn resolvers() -> Vec<&'static SecretResolver> {
    let mut v: Vec<&'static SecretResolver> = inventory::iter::<SecretResolver>.into_iter().collect();
    v.sort_by_key(|r| r.scheme);
    v
}

/// A secret value from a plugin config.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// `scheme:reference` when written as one; `None` for a value written in place (or by
    /// `${}` expansion).
    reference: Option<String>,
    value: Option<Arc<str>>,
}

impl Secret {
    /// A secret given by value.
    pub fn new(value: impl Into<String>) -> Self {
        Self { reference: None, value: Some(Arc::from(value.into())) }
    }

    /// Reads what phlo.yaml says: a reference of a registered scheme, else a value.
    pub fn parse(text: &str) -> Self {
        match text.split_once(':') {
            Some((scheme, rest)) if !rest.is_empty() && resolvers().iter().any(|r| r.scheme == scheme) => {
                Self { reference: Some(text.to_string()), value: None }
            }
            _ => Self::new(text),
        }
    }

    /// The reference it was written as (`env:TOKEN`), which is not secret.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// Resolves the reference for a project directory (a value given in place is kept).
    ///
    /// # Errors
    /// The resolver's reason (an unset variable, a missing file), naming the reference.
    pub fn resolve(&self, project_dir: &Path) -> Result<Secret, String> {
        self.resolve_within(project_dir, false)
    }

    /// As [`Secret::resolve`]; a `file:` secret must be a file of the project (a relative
    /// path whose `..` do not leave it) unless `allow_outside` (the project's
    /// `paths.allow_outside_project`) says otherwise.
    ///
    /// # Errors
    /// As [`Secret::resolve`], and a `file:` path outside the project.
    pub fn resolve_within(&self, project_dir: &Path, allow_outside: bool) -> Result<Secret, String> {
        if self.value.is_some() {
            return Ok(self.clone());
        }
        let Some(reference) = &self.reference else { return Err(String::from("the secret is empty")) };
        let (scheme, rest) = reference.split_once(':').unwrap_or((reference.as_str(), ""));
        if scheme == "file" && !allow_outside && leaves(rest) {
            return Err(format!(
                "secret `{reference}`: `{rest}` is outside the project directory; a secret file is a file of the \
                 project (say `paths: {{allow_outside_project: true}}` if it must live elsewhere)"
            ));
        }
        let Some(r) = resolvers().into_iter().find(|r| r.scheme == scheme) else {
            return Err(format!("no secret resolver for `{scheme}:` is compiled in"));
        };
        let value = (r.resolve)(rest, project_dir).map_err(|e| format!("secret `{reference}`: {e}"))?;
        Ok(Self { reference: self.reference.clone(), value: Some(Arc::from(value)) })
    }

    /// The value (`None` until resolved). Never print it.
    pub fn expose(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(r) => write!(f, "*** ({r})"),
            None => f.write_str("***"),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Err(serde::de::Error::custom(
                "the secret is empty (an unset `${VAR}`?): write `env:NAME`, `file:PATH` or `${NAME}`",
            ));
        }
        Ok(Self::parse(&text))
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A secret: `env:NAME`, `file:PATH`, `<scheme>:<reference>` of a registered resolver, or `${NAME}`"
        })
    }
}

/// Whether a relative path leaves its directory (an absolute one always does).
fn leaves(path: &str) -> bool {
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('~') {
        return true;
    }
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::Prefix(_) | std::path::Component::RootDir => return true,
            std::path::Component::CurDir => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// The fewest characters a secret may have: a shorter one cannot be masked without masking
/// ordinary text, so it is refused where it is written.
pub const MIN_SECRET_LEN: usize = 4;

/// Percent-encodes `value` as a URL component (RFC 3986 unreserved bytes kept), with upper-
/// or lower-case hex digits, and spaces as `%20` or, in form encoding, as `+`.
fn percent(value: &str, upper: bool, plus_for_space: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            b' ' if plus_for_space => out.push('+'),
            _ if upper => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// Every form in which a secret value can appear in what phlo writes or sends, or in what a
/// server echoes back: as it is, percent-encoded (upper- and lower-case hex, `+` or `%20` for
/// spaces), JSON-escaped (with `/` escaped or not) — longest first, so that masking one form
/// never leaves part of a longer one.
pub fn secret_forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_start_matches('"').trim_end_matches('"').to_string();
    let mut forms = vec![
        value.to_string(),
        percent(value, true, false),
        percent(value, false, false),
        percent(value, true, true),
        percent(value, false, true),
        json.replace('/', "\\/"),
        json,
    ];
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// `text` with every occurrence of each secret value (of [`MIN_SECRET_LEN`] characters or
/// more) replaced by `***`: for anything a plugin writes that could quote what it sent or
/// received. Pass every form of a secret ([`secret_forms`]) to mask its encodings too.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        if out.contains(*s) {
            out = out.replace(*s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2-token");
        for shown in [format!("{s}"), format!("{s:?}"), serde_json::to_string(&s).unwrap()] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(s.expose(), Some("hunter2-token"));
    }

    #[test]
    fn references_resolve_or_say_why_without_the_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "s3cr3t-value\n").unwrap();
        let f = Secret::parse("file:key");
        assert_eq!(f.reference(), Some("file:key"));
        assert!(f.expose().is_none());
        assert_eq!(f.resolve(dir.path()).unwrap().expose(), Some("s3cr3t-value"));
        let missing = Secret::parse("env:PHLO_TEST_SURELY_UNSET_VARIABLE").resolve(dir.path()).unwrap_err();
        assert!(missing.contains("is not set"), "{missing}");
        // an unknown scheme is a value written in place (a URL-like token stays one)
        assert_eq!(Secret::parse("abc:def").expose(), Some("abc:def"));
        assert_eq!(redact("token s3cr3t-value was refused", &["s3cr3t-value"]), "token *** was refused");
    }

    #[test]
    fn every_form_of_a_secret_is_masked() {
        let value = "s3cr/et+val== ü\"'";
        let forms = secret_forms(value);
        for shown in [
            value.to_string(),
            String::from("s3cr%2Fet%2Bval%3D%3D%20%C3%BC%22%27"),
            String::from("s3cr%2fet%2bval%3d%3d+%c3%bc%22%27"),
            serde_json::to_string(value).unwrap(),
            serde_json::to_string(value).unwrap().replace('/', "\\/"),
        ] {
            let text = format!("GET /x?token={shown} failed");
            let masked = redact(&text, &forms.iter().map(String::as_str).collect::<Vec<_>>());
            assert!(!masked.contains("s3cr"), "{shown} -> {masked}");
        }
    }

    #[test]
    fn a_file_secret_stays_in_the_project() {
        let dir = tempfile::tempdir().unwrap();
        for outside in ["file:../../etc/hostname", "file:/etc/hostname", "file:a/../../x"] {
            let e = Secret::parse(outside).resolve(dir.path()).unwrap_err();
            assert!(e.contains("outside the project directory"), "{outside}: {e}");
        }
        std::fs::write(dir.path().join("k"), "value-1234").unwrap();
        assert!(Secret::parse("file:./k").resolve(dir.path()).is_ok());
    }
}
