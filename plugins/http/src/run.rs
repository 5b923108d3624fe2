//! One run of a `rest` asset: every page of every request series (one, or one per parent
//! record), then one write — with the incremental cursor, in the same transaction.

use std::sync::atomic::{AtomicUsize, Ordering};

use phlo_core::data::{Commit, QueryEngine, TableStore, WriteMode, Written};
use phlo_core::diagnostic::Code;
use phlo_core::spec::{MaterializeResult, RunContext, RunError};
use serde_json::{Map, Value};

use crate::records::{Part, cursor_after, fill, records_of, text_of};
use crate::spool::Spool;
use crate::{Prepared, Style, Write};
use phlo_core::data::batches::{self, BatchBuilder};

type Record = Map<String, Value>;

/// Pages one request series may read when `pagination.max_pages` is not set; reaching it is
/// an error (an API that never says "last page" would otherwise be read until the timeout).
pub(crate) const DEFAULT_MAX_PAGES: u64 = 10_000;

/// What a request series fetched.
struct Fetched {
    spool: Spool,
    pages: u64,
}

/// `target` resolved against `base` by RFC 3986 (a whole URL stays itself; `validate` refuses
/// the relative shapes that would leave `base`'s path).
fn absolute(base: &str, target: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(target)) {
        Ok(u) => u.to_string(),
        Err(_) => format!("{}/{}", base.trim_end_matches('/'), target.trim_start_matches('/')),
    }
}

/// Fills a template for a partition and a parent record.
fn filled(p: &Prepared, rc: &RunContext, parts: &[Part], parent: Option<&Record>) -> Result<String, RunError> {
    let lookup = |f: &str| -> Result<String, String> {
        if let Some(field) = f.strip_prefix("parent.") {
            let v = parent.and_then(|r| r.get(field)).ok_or_else(|| {
                let has = parent.map(|r| r.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
                format!("the parent record has no field `{field}` (it has {has})")
            })?;
            return text_of(v).ok_or_else(|| format!("the parent field `{field}` is {v}, not a value for a URL"));
        }
        let key = rc.partition.clone().ok_or_else(|| String::from("this run has no partition"))?;
        match (f, &p.partitions) {
            ("partition", _) => Ok(key),
            (_, phlo_core::spec::PartitionSpec::Time(t)) => {
                let (start, end) = t.window(&key).map_err(|e| e.to_string())?;
                Ok(if f == "partition_start" { start.to_rfc3339() } else { end.to_rfc3339() })
            }
            _ => Err(format!("`{{{f}}}` needs time partitions (these are static)")),
        }
    };
    fill(parts, &lookup).map_err(|e| RunError::permanent(format!("`{}`: {e}", rc.asset)))
}

/// Fetches every page of one request series.
fn series(p: &Prepared, rc: &RunContext, parent: Option<&Record>, since: Option<&str>) -> Result<Fetched, RunError> {
    let base = p.cfg.base_url.trim();
    let endpoint = filled(p, rc, &p.endpoint, parent)?;
    let mut url = absolute(base, &endpoint);
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, t) in &p.params {
        params.push((k.clone(), filled(p, rc, t, parent)?));
    }
    if let (Some(inc), Some(since)) = (&p.cfg.incremental, since) {
        params.push((inc.param.clone(), since.to_string()));
    }
    let mut headers = Vec::new();
    for (k, t) in &p.headers {
        headers.push((k.clone(), filled(p, rc, t, parent)?));
    }
    let pag = p.cfg.pagination.as_ref();
    let cursor_field = p.cfg.incremental.as_ref().map(|i| i.cursor_field.as_str());
    let mut out = Fetched { spool: Spool::new(cursor_field), pages: 0 };
    let mut cursor: Option<String> = None;
    let mut first = true;
    // a series that comes back to a page, a cursor or a URL it had would never end
    let mut bodies: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut cursors: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut urls: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    loop {
        match pag.and_then(|g| g.max_pages) {
            Some(m) if out.pages >= m => {
                rc.log("info", &format!("stopped after {} page(s) (`max_pages`)", out.pages));
                break;
            }
            None if pag.is_some() && out.pages >= DEFAULT_MAX_PAGES => {
                return Err(RunError::permanent(format!(
                    "`{}` read {DEFAULT_MAX_PAGES} pages without reaching the end (the default `max_pages`); nothing \
                     was written — if the API has more, set `pagination.max_pages`",
                    rc.asset
                ))
                .with_code(Code::InputFailed));
            }
            _ => {}
        }
        let mut query = if first { params.clone() } else { Vec::new() };
        if let Some(g) = pag {
            match g.style {
                Style::PageNumber => {
                    query = params.clone();
                    let n = g.start.unwrap_or(1) + out.pages;
                    query.push((g.param.clone().unwrap_or_else(|| String::from("page")), n.to_string()));
                    if let (Some(sp), Some(size)) = (&g.page_size_param, g.page_size) {
                        query.push((sp.clone(), size.to_string()));
                    }
                }
                Style::Offset => {
                    query = params.clone();
                    let limit = g.limit.unwrap_or(100);
                    query.push((
                        g.offset_param.clone().unwrap_or_else(|| String::from("offset")),
                        (out.pages * limit).to_string(),
                    ));
                    query.push((g.limit_param.clone().unwrap_or_else(|| String::from("limit")), limit.to_string()));
                }
                Style::Cursor => {
                    query = params.clone();
                    if let Some(c) = &cursor {
                        query.push((g.param.clone().unwrap_or_else(|| String::from("cursor")), c.clone()));
                    }
                }
                Style::NextUrl | Style::LinkHeader => {}
            }
        }
        let page = p.client.get(rc, &url, &query, &headers)?;
        out.pages += 1;
        out.spool.page(page.body.len())?;
        first = false;
        let mut body: Value = serde_json::from_slice(&page.body).map_err(|e| {
            RunError::permanent(p.client.mask(&format!(
                "page {} of `{}` (GET {}) is not JSON: {e}; nothing was written",
                out.pages, rc.asset, page.shown
            )))
            .with_code(Code::InputFailed)
        })?;
        if pag.is_some()
            && let Some(earlier) = bodies.insert(xxhash_rust::xxh3::xxh3_64(&page.body), out.pages)
        {
            return Err(RunError::permanent(p.client.mask(&format!(
                "page {} of `{}` (GET {}) is the same as page {earlier}: the API does not move to the next page; \
                     nothing was written",
                out.pages, rc.asset, page.shown
            )))
            .with_code(Code::InputFailed));
        }
        // what the pagination reads from the body, before its records are taken out of it
        let next_cursor = pag
            .filter(|g| g.style == Style::Cursor)
            .and_then(|g| body.pointer(g.cursor.as_deref().unwrap_or_default()).and_then(text_of));
        let next_url = pag.filter(|g| g.style == Style::NextUrl).and_then(|g| {
            body.pointer(g.next.as_deref().unwrap_or_default()).and_then(Value::as_str).map(str::to_string)
        });
        let recs = records_of(&mut body, &p.cfg.records).map_err(|e| {
            RunError::permanent(format!(
                "page {} of `{}` (GET {}): {e}; nothing was written",
                out.pages, rc.asset, page.shown
            ))
            .with_code(Code::InputFailed)
        })?;
        let n = recs.len();
        for (i, r) in recs.into_iter().enumerate() {
            match r {
                Value::Object(mut m) => {
                    if let Some(parent) = parent {
                        for part in &p.endpoint {
                            if let Part::Field(f) = part
                                && let Some(field) = f.strip_prefix("parent.")
                                && let Some(v) = parent.get(field)
                            {
                                m.insert(format!("parent_{field}"), v.clone());
                            }
                        }
                    }
                    out.spool.push(m)?;
                }
                other => {
                    return Err(RunError::permanent(format!(
                        "record {} of page {} of `{}` (GET {}) is {other}, not an object; nothing was written",
                        i + 1,
                        out.pages,
                        rc.asset,
                        page.shown
                    ))
                    .with_code(Code::InputFailed));
                }
            }
        }
        let Some(g) = pag else { break };
        if n == 0 {
            break;
        }
        match g.style {
            Style::PageNumber => {
                if g.page_size.is_some_and(|s| (n as u64) < s) {
                    break;
                }
            }
            Style::Offset => {
                if (n as u64) < g.limit.unwrap_or(100) {
                    break;
                }
            }
            Style::Cursor => {
                let next = next_cursor.clone().filter(|c| !c.is_empty());
                match next {
                    None => break,
                    Some(c) => {
                        if let Some(earlier) = cursors.insert(c.clone(), out.pages) {
                            return Err(RunError::permanent(p.client.mask(&format!(
                                "page {} of `{}` gave the cursor `{c}`, which page {earlier} gave already: the \
                                 pagination goes round in a circle; nothing was written",
                                out.pages, rc.asset
                            )))
                            .with_code(Code::InputFailed));
                        }
                        cursor = Some(c);
                    }
                }
            }
            Style::NextUrl | Style::LinkHeader => {
                let next = if g.style == Style::NextUrl { next_url.clone() } else { page.link_next.clone() };
                match next.filter(|u| !u.is_empty()) {
                    None => break,
                    Some(u) => {
                        let u = absolute(base, &u);
                        urls.insert(url.clone(), out.pages);
                        if let Some(earlier) = urls.get(&u) {
                            return Err(RunError::permanent(p.client.mask(&format!(
                                "page {} of `{}` names `{u}` as the next page, which was page {earlier}: the \
                                 pagination goes round in a circle; nothing was written",
                                out.pages, rc.asset
                            )))
                            .with_code(Code::InputFailed));
                        }
                        url = u;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The parent asset's records (its table), for a substream.
fn parents(p: &Prepared, rc: &RunContext) -> Result<Vec<Record>, RunError> {
    let Some(parent) = &p.parent_key else { return Ok(Vec::new()) };
    let derived = phlo_core::data::table_name(parent);
    let table = p.dep_tables.get(parent).unwrap_or(&derived);
    let engine = rc.capability::<dyn QueryEngine>()?;
    let rows = engine
        .query_until(&format!("SELECT * FROM {}", phlo_core::data::quote_ident(table)), &rc.stop_signal())
        .map_err(|e| RunError::new(format!("cannot read the parent records (`{table}`): {}", e.message)))?;
    Ok((0..rows.len())
        .filter_map(|i| match rows.row_json(i) {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

pub(crate) fn run(rc: &RunContext, p: &Prepared) -> Result<MaterializeResult, RunError> {
    let store = rc.capability::<dyn TableStore>()?;
    // the step's write, committed by an earlier attempt of this run: the API is not asked again
    if let Some(c) = store.committed(&rc.step_mark()).map_err(|e| RunError::new(e.message))? {
        let result =
            MaterializeResult::new().with_written(&Written::Already(c)).with_metadata("table", p.table.as_str());
        return match store.version(&p.table, None).map_err(|e| RunError::new(e.message))? {
            Some(v) => Ok(result.with_data_version(v)),
            None => Ok(result),
        };
    }
    let state_key = match &rc.partition {
        Some(part) => format!("rest:{}:{part}", rc.asset),
        None => format!("rest:{}", rc.asset),
    };
    // the cursor with its JSON type (stored as JSON: `1000`, `"2024-…"`), and as sent
    let since_value: Option<Value> = match &p.cfg.incremental {
        Some(inc) => store
            .state(&state_key)
            .map_err(|e| RunError::new(format!("cannot read the incremental state: {}", e.message)))?
            .or_else(|| inc.initial.clone())
            .map(|t| crate::records::stored_cursor(&t)),
        None => None,
    };
    let since: Option<String> = since_value.as_ref().and_then(text_of);
    let fetched: Vec<Fetched> = if p.parent_key.is_some() {
        let parents = parents(p, rc)?;
        let workers = p.cfg.concurrency.unwrap_or(4).clamp(1, 64).min(parents.len().max(1));
        let next = AtomicUsize::new(0);
        let mut results: Vec<Option<Result<Fetched, RunError>>> = (0..parents.len()).map(|_| None).collect();
        let slots = std::sync::Mutex::new(&mut results);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= parents.len() || rc.is_cancelled() {
                            return;
                        }
                        let r = series(p, rc, Some(&parents[i]), since.as_deref());
                        let failed = r.is_err();
                        slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                        if failed {
                            // the others stop taking work: the run fails with the first error
                            next.store(parents.len(), Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Some(Ok(f)) => out.push(f),
                Some(Err(e)) => return Err(e),
                None => return Err(RunError::new("stopped before every parent record was fetched")),
            }
        }
        out
    } else {
        vec![series(p, rc, None, since.as_deref())?]
    };
    let pages: u64 = fetched.iter().map(|f| f.pages).sum();
    let total: u64 = fetched.iter().map(|f| f.spool.len()).sum();
    let mut typing = phlo_core::data::JsonTyping::default();
    fetched.iter().for_each(|f| typing.merge(&f.spool.typing));
    // the highest cursor seen, never below the one sent
    let mut cursor: Option<Value> = since_value.clone();
    if let Some(inc) = &p.cfg.incremental {
        for v in fetched.iter().filter_map(|f| f.spool.cursor.as_ref()) {
            if cursor.as_ref().is_none_or(|c| cursor_after(v, c)) {
                cursor = Some(v.clone());
            }
        }
        // a misspelt `cursor_field` would fetch everything again on every run (and append it
        // twice): an error, not a silent full reload
        if total > 0 && !fetched.iter().any(|f| f.spool.cursor_seen) {
            let fields = fetched.iter().find_map(|f| f.spool.first_fields.clone()).unwrap_or_default();
            return Err(RunError::permanent(format!(
                "`{}`: no record has the incremental `cursor_field` `{}` (the records have {}); nothing was written",
                rc.asset,
                inc.cursor_field,
                fields.join(", ")
            ))
            .with_code(Code::InputFailed));
        }
    }
    // stored typed (its JSON), so that the next run compares numbers as numbers
    let state: Option<String> = match (&p.cfg.incremental, &cursor) {
        (Some(_), Some(c)) if since_value.as_ref() != Some(c) => Some(c.to_string()),
        _ => None,
    };
    let mut columns = typing.columns();
    if total == 0 {
        // nothing came: a replaced table keeps its columns and loses its rows; others stay
        match (p.write, store.describe(&p.table).map_err(|e| RunError::new(e.message))?) {
            (Write::Replace, Some(cols)) => columns = cols,
            _ => {
                rc.log("info", &format!("no records ({pages} page(s)); `{}` unchanged", p.table));
                return Ok(MaterializeResult::new().with_row_count(0).with_metadata("pages", pages));
            }
        }
    }
    let mode = match p.write {
        Write::Replace => WriteMode::Replace,
        Write::Append => WriteMode::Append,
        Write::Merge => WriteMode::Merge(p.cfg.primary_key.clone()),
    };
    let step = rc.step_mark();
    let commit = Commit { state: state.as_deref().map(|c| (state_key.as_str(), c)), step: Some(&step) };
    let stop = rc.stop_signal();
    // the records stream from the spools to the table: converted on one thread, written in
    // one transaction (with the cursor) on this one
    let written = std::thread::scope(|s| {
        let (tx, mut rx) = batches::channel::<RunError>();
        let (typing, width) = (&typing, columns.len());
        let types: Vec<_> = columns.iter().map(|c| c.data_type).collect();
        s.spawn(move || {
            let mut batch = BatchBuilder::new(width);
            let mut emit = |b: &mut BatchBuilder| b.flush(&tx).map_err(|_| RunError::new("the write stopped reading"));
            let result = fetched.into_iter().try_for_each(|f| f.spool.drain(typing, &types, &mut batch, &mut emit));
            match result.and_then(|()| emit(&mut batch)) {
                Ok(()) => {}
                Err(e) => tx.fail(e),
            }
        });
        store
            .write_batches(&p.table, &columns, &mut rx, &mode, &commit, &stop)
            .map_err(|e| rx.take_failure().unwrap_or_else(|| RunError::new(p.client.mask(&e.message))))
    })?;
    let mut result = MaterializeResult::new()
        .with_written(&written)
        .with_metadata("table", p.table.as_str())
        .with_metadata("pages", pages);
    if let Some(c) = cursor.as_ref().and_then(text_of) {
        result = result.with_metadata("cursor", c);
    }
    if let Written::Versioned { .. } = written {
        return Ok(result);
    }
    match store.version(&p.table, None).map_err(|e| RunError::new(e.message))? {
        Some(v) => Ok(result.with_data_version(v)),
        None => Ok(result),
    }
}

/// `phlo validate --probe`: one request to the probe path (or the base URL) with the
/// credentials and the source's parameters and headers (those that need no partition or
/// parent record); a refusal (401, 403), any other 4xx or 5xx answer, or no answer is the
/// probe's failure.
pub(crate) fn probe(p: &Prepared) -> Result<String, String> {
    let base = p.cfg.base_url.trim();
    let url = p.cfg.probe.as_deref().map_or_else(|| base.to_string(), |path| absolute(base, path));
    let fixed = |pairs: &[(String, Vec<Part>)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .filter_map(|(k, parts)| fill(parts, &|_| Err(String::new())).ok().map(|v| (k.clone(), v)))
            .collect()
    };
    match p.client.probe(&url, &fixed(&p.params), &fixed(&p.headers)) {
        Ok((status, shown)) if status == 401 || status == 403 => {
            Err(format!("GET {shown} was refused ({status}): the API did not accept the credentials; check `auth`"))
        }
        Ok((status, shown)) if status >= 400 => Err(format!("GET {shown} answered {status}")),
        Ok((status, shown)) => Ok(format!("GET {shown} answered {status}")),
        Err(e) => Err(e),
    }
}
