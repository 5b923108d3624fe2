//! The `rest` asset type: records from a REST API (JSON) written to the `table_store`.
//!
//! ```yaml
//! assets:
//!   raw.orders:
//!     type: rest
//!     base_url: https://api.example.com/v1/
//!     endpoint: orders
//!     params: {status: all}
//!     auth: {bearer: env:SHOP_TOKEN}          # or basic / api_key, values from secrets
//!     records: /data                          # JSON pointer to the records of a page
//!     pagination: {style: cursor, param: cursor, cursor: /meta/next}
//!     primary_key: [id]                       # merge (upsert) by key
//!     incremental: {cursor_field: updated_at, param: updated_since, initial: "2024-01-01"}
//!   raw.order_items:
//!     type: rest
//!     base_url: https://api.example.com/v1/
//!     parent: raw.orders                      # one request series per order
//!     endpoint: orders/{parent.id}/items
//! ```
//!
//! Secrets never print: requests and responses reach hooks as `source.request` events with
//! the URL masked, and every error and log line is masked too.

mod client;
mod records;
mod run;
mod spool;

use base64::Engine as _;
use std::collections::BTreeMap;
use std::time::Duration;

use phlo_core::data::{QueryEngine, TableStore, table_name};
use phlo_core::plugin::{AssetType, AssetTypeContext, Plugin, PluginError};
use phlo_core::secret::Secret;
use phlo_core::spec::{AssetKind, AssetSpec, RunContext};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::client::{Client, Credentials};
use crate::records::{Part, check_fields, check_pointer, parse_template};

/// How the API wants to be authenticated; every value is a secret.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A key sent in a header (`in: header`, the default) or a query parameter (`in: query`).
    ApiKey {
        /// The header or parameter name (`X-API-Key`, `api_key`).
        name: String,
        /// The key.
        value: Secret,
        /// `header` or `query`.
        #[serde(default, rename = "in")]
        location: KeyIn,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyIn {
    /// A request header.
    #[default]
    Header,
    /// A query parameter (masked in events and errors).
    Query,
}

/// How pages follow each other.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// `?page=1`, `?page=2`, … (`param`, `start`, `page_size_param`, `page_size`).
    PageNumber,
    /// `?offset=0&limit=100`, … (`offset_param`, `limit_param`, `limit`).
    Offset,
    /// A cursor from each page's body (`cursor`: its JSON pointer) sent as `param`.
    Cursor,
    /// The next page's URL in the body (`next`: its JSON pointer).
    NextUrl,
    /// The next page's URL in the `Link` header (`rel="next"`).
    LinkHeader,
}

/// `pagination:` of a `rest` asset. Every style stops at a page without records; page
/// numbers and offsets also at a short page, cursors and next URLs when there is none.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// `page_number`, `offset`, `cursor`, `next_url` or `link_header`.
    pub style: Style,
    /// The page-number or cursor parameter (`page` / `cursor` by default).
    #[serde(default)]
    pub param: Option<String>,
    /// The first page number (1 by default).
    #[serde(default)]
    pub start: Option<u64>,
    /// The page-size parameter sent with page numbers (with `page_size`).
    #[serde(default)]
    pub page_size_param: Option<String>,
    /// Records per page (page numbers).
    #[serde(default)]
    pub page_size: Option<u64>,
    /// The offset parameter (`offset` by default).
    #[serde(default)]
    pub offset_param: Option<String>,
    /// The limit parameter (`limit` by default).
    #[serde(default)]
    pub limit_param: Option<String>,
    /// Records per page (offsets).
    #[serde(default)]
    pub limit: Option<u64>,
    /// JSON pointer to the next cursor in a page (`cursor` style).
    #[serde(default)]
    pub cursor: Option<String>,
    /// JSON pointer to the next page's URL in a page (`next_url` style).
    #[serde(default)]
    pub next: Option<String>,
    /// Stop after this many pages.
    #[serde(default)]
    pub max_pages: Option<u64>,
}

/// `incremental:` of a `rest` asset: only records newer than the last run's.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The record field that grows (`updated_at`, `id`).
    pub cursor_field: String,
    /// The query parameter that sends the highest value seen so far.
    pub param: String,
    /// What to send on the first run.
    #[serde(default)]
    pub initial: Option<String>,
}

/// How records are written.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    /// The table becomes this run's records.
    Replace,
    /// This run's records are added.
    Append,
    /// Upsert by `primary_key`.
    Merge,
}

/// `type: rest` in phlo.yaml.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// The API's base URL (`https://api.example.com/v1`).
    pub base_url: String,
    /// The endpoint below `base_url` (or a whole URL); `{parent.FIELD}`, `{partition}`,
    /// `{partition_start}` and `{partition_end}` are filled in.
    pub endpoint: String,
    /// Query parameters (templates like `endpoint`, or secrets written `env:NAME`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Request headers (templates like `endpoint`, or secrets written `env:NAME` / `file:PATH`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials, from secrets.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// How pages follow each other (none: one request).
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// JSON pointer to the array of records in a page (empty: the body is the array).
    #[serde(default)]
    pub records: String,
    /// Columns that identify a record: `write: merge` upserts by them.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// `replace`, `append` or `merge` (default: `merge` with a `primary_key`, else `replace`;
    /// `append` for an incremental asset without one).
    #[serde(default)]
    pub write: Option<Write>,
    /// The table (default: the asset key with `.` → `_`).
    #[serde(default)]
    pub table: Option<String>,
    /// Fetch only records newer than the last successful run's.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// A substream: one request series per record of this asset (its table).
    #[serde(default)]
    pub parent: Option<String>,
    /// Parent records fetched at once (substreams; 4 by default).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Longest one request may take (`30s` by default).
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// Retries of a request after a 429, a 5xx or no response (5 by default).
    #[serde(default)]
    pub request_retries: Option<u32>,
    /// The first retry's delay, doubled each time (`500ms` by default); `Retry-After` wins.
    #[serde(default)]
    pub backoff: Option<String>,
    /// The longest delay between tries (`30s` by default).
    #[serde(default)]
    pub max_backoff: Option<String>,
    /// Most requests per second (no limit by default).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// The path `phlo validate --probe` requests (default: `base_url` itself).
    #[serde(default)]
    pub probe: Option<String>,
}

/// The `rest` asset type.
#[derive(Debug)]
pub struct Rest;

impl Plugin for Rest {
    const NAME: &'static str = "rest";
    const DESCRIPTION: &'static str = "Records from a REST API (JSON): auth from secrets, pagination, retries, rate limits, incremental state, substreams";
    type Config = RestConfig;
    const TAGS: &'static [&'static str] = &["http", "rest", "source"];
}

impl AssetType for Rest {
    const KIND: AssetKind = AssetKind::Ingestion;
    fn build(config: RestConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
        build(config, ctx)
    }
}

phlo_core::register!(asset_type Rest, requires: [dyn TableStore], optional: [dyn QueryEngine]);

fn invalid(key: &str, message: impl Into<String>, help: impl Into<String>) -> PluginError {
    PluginError::Invalid { key: key.into(), at: None, message: message.into(), help: Some(help.into()) }
}

fn duration(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, PluginError> {
    match value {
        None => Ok(default),
        Some(v) => {
            phlo_core::config::parse_duration(v).filter(|d| *d <= Duration::from_secs(24 * 3600)).ok_or_else(|| {
                invalid(key, format!("`{v}` is not a duration up to a day"), "write e.g. `500ms`, `30s`, `2m`")
            })
        }
    }
}

/// Everything a run needs, checked when the project loads.
pub(crate) struct Prepared {
    pub cfg: RestConfig,
    pub endpoint: Vec<Part>,
    pub params: Vec<(String, Vec<Part>)>,
    pub headers: Vec<(String, Vec<Part>)>,
    pub table: String,
    /// The parent asset's key, for a substream (its table is in `dep_tables`).
    pub parent_key: Option<String>,
    /// The tables of the asset's dependencies, filled when the project is loaded.
    pub dep_tables: phlo_core::spec::DepTables,
    pub write: Write,
    pub client: Client,
    pub partitions: phlo_core::spec::PartitionSpec,
}

/// A relative `target` that RFC 3986 resolution would take out of `base_url`'s path — a leading
/// `/` replaces the path, and a base without a trailing `/` loses its last segment — is an
/// error saying where the requests would go and how to write what is meant.
fn join_problem(base: &str, target: &str, key: &str) -> Option<PluginError> {
    let b = url::Url::parse(base).ok()?;
    let path = b.path();
    if path == "/" || path.is_empty() || target.starts_with("http://") || target.starts_with("https://") {
        return None;
    }
    // fields are filled per request; the shape is what matters here
    let shape = target.split(['?', '#']).next().unwrap_or(target);
    let goes = b.join(shape).map(|u| u.to_string()).unwrap_or_default();
    let dir = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
    let below = format!("{}{}", b.origin().ascii_serialization(), dir);
    if let Some(rest) = target.strip_prefix('/') {
        return Some(invalid(
            key,
            format!(
                "`{target}` starts with `/`: it replaces the path of `base_url` (`{path}`), so the request goes to \
                 `{goes}` (RFC 3986)"
            ),
            format!(
                "to request below `{path}`, write `base_url: {below}` and `{key}: {rest}`; to mean the origin's path, \
                 drop `{path}` from `base_url`"
            ),
        ));
    }
    if !path.ends_with('/') {
        return Some(invalid(
            key,
            format!(
                "`base_url` does not end with `/`, so `{target}` replaces its last segment and the request goes to \
                 `{goes}` (RFC 3986)"
            ),
            format!("end `base_url` with `/`: `base_url: {below}`"),
        ));
    }
    None
}

/// Every mistake of an entry, so that `validate` reports them at once (the build below stops
/// at the first).
fn problems(cfg: &RestConfig, ctx: &AssetTypeContext) -> Vec<PluginError> {
    let mut out = Vec::new();
    let base = cfg.base_url.trim();
    if !url_ok(base) {
        out.push(invalid(
            "base_url",
            format!("`{base}` is not an http(s) URL"),
            "write e.g. `https://api.example.com/v1`",
        ));
    }
    let (has_parent, partitioned) = (cfg.parent.is_some(), ctx.partitions.is_partitioned());
    let templates = std::iter::once(("endpoint", &cfg.endpoint))
        .chain(cfg.params.values().map(|v| ("params", v)))
        .chain(cfg.headers.values().map(|v| ("headers", v)));
    for (key, text) in templates {
        if Secret::parse(text).reference().is_some() {
            continue;
        }
        if let Err(e) = parse_template(text).and_then(|t| check_fields(&t, has_parent, partitioned)) {
            out.push(invalid(key, e, "fields are written `{parent.FIELD}` or `{partition}`"));
        }
    }
    if let Err(e) = check_pointer(&cfg.records) {
        out.push(invalid("records", e, "e.g. `records: /data`"));
    }
    // where the endpoint (and the probe path) lead, by RFC 3986, when that is not below base_url
    if url_ok(base) {
        for (key, target) in
            std::iter::once(("endpoint", cfg.endpoint.as_str())).chain(cfg.probe.as_deref().map(|p| ("probe", p)))
        {
            if let Some(e) = join_problem(base, target, key) {
                out.push(e);
            }
        }
    }
    for (name, value) in &cfg.headers {
        if let Err(e) = check_header(name, value) {
            out.push(invalid("headers", e, "a header name is letters, digits and `-`; a value is one line"));
        }
    }
    for ptr in cfg.pagination.iter().flat_map(|p| p.cursor.iter().chain(p.next.iter())) {
        if let Err(e) = check_pointer(ptr) {
            out.push(invalid("pagination", e, "e.g. `cursor: /meta/next`"));
        }
    }
    let secrets = cfg.params.values().chain(cfg.headers.values()).map(|v| Secret::parse(v)).chain(match &cfg.auth {
        Some(Auth::Bearer(t)) => vec![t.clone()],
        Some(Auth::Basic { password, .. }) => vec![password.clone()],
        Some(Auth::ApiKey { value, .. }) => vec![value.clone()],
        None => Vec::new(),
    });
    // a secret not set here only keeps the asset from running (see `build`) — unless the entry
    // has other mistakes, which are all reported at once; a file outside the project is a
    // mistake in the file
    let mut unset = Vec::new();
    for s in secrets.filter(|s| s.reference().is_some()) {
        if let Err(e) = s.resolve_within(&ctx.project_dir, ctx.allow_outside_project) {
            let outside = e.contains("outside the project");
            let found = invalid("auth", e, "set the variable, create the file, or fix the reference");
            if outside { out.push(found) } else { unset.push(found) }
        }
    }
    if !out.is_empty() {
        out.extend(unset);
    }
    out
}

/// An http(s) URL with a host and nothing a URL cannot hold (spaces, line breaks).
fn url_ok(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.contains(|c: char| c.is_whitespace() || c.is_control())
    })
}

/// A header must be sendable: a token name, a value without line breaks.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!("the value of header `{name}` has a line break"));
    }
    Ok(())
}

fn build(cfg: RestConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let mut all = problems(&cfg, ctx);
    if all.len() > 1 {
        return Err(PluginError::Several(all));
    }
    if let Some(one) = all.pop() {
        return Err(one);
    }
    let base = cfg.base_url.trim();
    if !url_ok(base) {
        return Err(invalid(
            "base_url",
            format!("`{base}` is not an http(s) URL"),
            "write e.g. `https://api.example.com/v1`",
        ));
    }
    let partitioned = ctx.partitions.is_partitioned();
    let has_parent = cfg.parent.is_some();
    let template = |key: &str, text: &str| {
        parse_template(text).and_then(|t| check_fields(&t, has_parent, partitioned).map(|()| t)).map_err(|e| {
            invalid(key, e, "fields are written `{parent.FIELD}` or `{partition}`; `{{` is a literal brace")
        })
    };
    if let Some((name, value)) = cfg.headers.iter().find(|(n, v)| check_header(n, v).is_err()) {
        let e = check_header(name, value).err().unwrap_or_default();
        return Err(invalid("headers", e, "a header name is letters, digits and `-`; a value is one line"));
    }
    let endpoint = template("endpoint", &cfg.endpoint)?;
    check_pointer(&cfg.records).map_err(|e| invalid("records", e, "e.g. `records: /data`"))?;
    if let Some(p) = &cfg.pagination {
        let need = |field: &Option<String>, name: &str| match field {
            Some(ptr) => check_pointer(ptr).map_err(|e| invalid("pagination", e, format!("`{name}: /meta/next`"))),
            None => Err(invalid(
                "pagination",
                format!("`style: {}` needs `{name}`, the JSON pointer to it in each page", style_name(p.style)),
                format!("add e.g. `{name}: /meta/next`"),
            )),
        };
        match p.style {
            Style::Cursor => need(&p.cursor, "cursor")?,
            Style::NextUrl => need(&p.next, "next")?,
            Style::Offset if p.limit.is_none_or(|l| l == 0) => {
                return Err(invalid(
                    "pagination",
                    "`style: offset` needs `limit` (records per page, ≥ 1)",
                    "add `limit: 100`",
                ));
            }
            _ => {}
        }
    }
    let write = match (cfg.write, cfg.primary_key.is_empty(), &cfg.incremental) {
        (Some(Write::Merge), true, _) => {
            return Err(invalid("write", "`write: merge` needs `primary_key`", "add `primary_key: [id]`"));
        }
        (Some(Write::Replace), _, Some(_)) => {
            return Err(invalid(
                "write",
                "an incremental asset fetches only new records: `write: replace` would drop the others",
                "use `write: merge` with a `primary_key`, or `write: append`",
            ));
        }
        (Some(w), _, _) => w,
        (None, false, _) => Write::Merge,
        (None, true, Some(_)) => Write::Append,
        (None, true, None) => Write::Replace,
    };
    // secrets resolve now: an unset variable or a missing file is an error of `validate`
    let resolve = |s: &Secret| {
        s.resolve_within(&ctx.project_dir, ctx.allow_outside_project).map_err(|e| {
            invalid("auth", e, "set the variable, create the file, or fix the reference (`env:NAME`, `file:PATH`)")
        })
    };
    // every form a secret can take in what is logged, recorded or echoed back is masked
    let mut secrets: Vec<String> = Vec::new();
    // a secret not resolvable here (an unset variable) does not make the project invalid:
    // the asset cannot run, `validate` says so, and commands that do not use it go on
    let mut unresolved: Vec<(String, String, String)> = Vec::new();
    let mut reveal = |s: &Secret| -> Result<String, PluginError> {
        let v = match resolve(s) {
            Ok(v) => v.expose().unwrap_or_default().to_string(),
            Err(PluginError::Invalid { key, message, help, .. })
                if s.reference()
                    .is_some_and(|r| !r.starts_with("file:") || !message.contains("outside the project")) =>
            {
                unresolved.push((key, message, help.unwrap_or_default()));
                return Ok(String::from("unresolved-secret"));
            }
            Err(e) => return Err(e),
        };
        if v.chars().count() < phlo_core::secret::MIN_SECRET_LEN {
            return Err(invalid(
                "auth",
                format!(
                    "the secret {} has fewer than {} characters: it could not be masked without masking ordinary text",
                    s.reference().unwrap_or("written in place"),
                    phlo_core::secret::MIN_SECRET_LEN
                ),
                "use the real credential",
            ));
        }
        secrets.extend(phlo_core::secret::secret_forms(&v));
        Ok(v)
    };
    // a header or parameter written as a secret reference (`env:KEY`) is a secret; others
    // are templates
    let mut values = |key: &str, map: &BTreeMap<String, String>| -> Result<Vec<(String, Vec<Part>)>, PluginError> {
        map.iter()
            .map(|(k, v)| {
                let s = Secret::parse(v);
                if s.reference().is_some() {
                    Ok((k.clone(), vec![Part::Text(reveal(&s)?)]))
                } else {
                    Ok((k.clone(), template(key, v)?))
                }
            })
            .collect()
    };
    let params = values("params", &cfg.params)?;
    let headers = values("headers", &cfg.headers)?;
    // a header carries visible ASCII only: a secret that holds other characters could never
    // be sent (it would fail every request and be retried); said now, without the value
    let header_text = |key: &str, v: &str| -> Result<(), PluginError> {
        if v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            Ok(())
        } else {
            Err(invalid(
                key,
                format!("the secret of `{key}` holds characters an HTTP header cannot carry (only visible ASCII)"),
                "check the secret's value; an API key with other characters is sent as a query parameter (`in: query`)",
            ))
        }
    };
    for (k, parts) in &headers {
        if let [Part::Text(v)] = parts.as_slice() {
            header_text(&format!("headers.{k}"), v)?;
        }
    }
    let credentials = match &cfg.auth {
        None => None,
        Some(Auth::Bearer(t)) => Some(Credentials::Bearer(reveal(t)?)),
        Some(Auth::Basic { username, password }) => {
            let password = reveal(password)?;
            // what is sent is base64 of `user:password`: a server that echoes it echoes that
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            secrets.extend(phlo_core::secret::secret_forms(&token));
            Some(Credentials::Basic(username.clone(), password))
        }
        Some(Auth::ApiKey { name, value, location: KeyIn::Header }) => {
            Some(Credentials::Header(name.clone(), reveal(value)?))
        }
        Some(Auth::ApiKey { name, value, location: KeyIn::Query }) => {
            Some(Credentials::Query(name.clone(), reveal(value)?))
        }
    };
    match &credentials {
        Some(Credentials::Bearer(t)) => header_text("auth", t)?,
        Some(Credentials::Header(_, v)) => header_text("auth", v)?,
        _ => {}
    }
    let client = Client::new(
        credentials,
        duration("request_timeout", cfg.request_timeout.as_deref(), Duration::from_secs(30))?,
        cfg.request_retries.unwrap_or(5).min(100),
        duration("backoff", cfg.backoff.as_deref(), Duration::from_millis(500))?,
        duration("max_backoff", cfg.max_backoff.as_deref(), Duration::from_secs(30))?,
        cfg.rate_limit,
        secrets,
    );
    let table = cfg.table.clone().unwrap_or_else(|| table_name(&ctx.key));
    let mut spec = AssetSpec::new(ctx.key.as_str())
        .with_description(format!("{} {} loaded into `{table}`", base, cfg.endpoint))
        .with_metadata("table", table.as_str())
        .with_metadata("url", format!("{}{}", base.trim_end_matches('/'), cfg.endpoint));
    // the parent's table, as the project declares it (its `table:` included)
    let parent_key = cfg.parent.clone();
    if let Some(p) = &cfg.parent {
        spec = spec.with_dep(p.as_str());
        spec.requires.push(String::from("query_engine"));
    }
    spec.unresolved.clone_from(&unresolved);
    let dep_tables = spec.dep_tables.clone();
    let prepared = std::sync::Arc::new(Prepared {
        dep_tables,
        cfg,
        endpoint,
        params,
        headers,
        table,
        parent_key,
        write,
        client,
        partitions: ctx.partitions.clone(),
    });
    let probe = std::sync::Arc::clone(&prepared);
    spec = spec.with_probe(move || run::probe(&probe));
    let unresolved = std::sync::Arc::new(unresolved);
    Ok(spec.with_run(move |rc: RunContext| {
        let prepared = std::sync::Arc::clone(&prepared);
        let unresolved = std::sync::Arc::clone(&unresolved);
        async move {
            // (a run that selects the asset is refused first; this is for embedders)
            if let Some((_, message, _)) = unresolved.first() {
                return Err(phlo_core::spec::RunError::permanent(message.clone()));
            }
            match tokio::runtime::Handle::try_current() {
                Ok(h) => h
                    .spawn_blocking(move || run::run(&rc, &prepared))
                    .await
                    .map_err(|e| phlo_core::spec::RunError::new(format!("the request stopped: {e}")))?,
                Err(_) => run::run(&rc, &prepared),
            }
        }
    }))
}

fn style_name(s: Style) -> &'static str {
    match s {
        Style::PageNumber => "page_number",
        Style::Offset => "offset",
        Style::Cursor => "cursor",
        Style::NextUrl => "next_url",
        Style::LinkHeader => "link_header",
    }
}
