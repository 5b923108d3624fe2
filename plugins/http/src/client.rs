//! Requests: auth, the rate limit, retries with exponential backoff that honour
//! `Retry-After`, a timeout per request, and a `source.request` event for each try.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use phlo_core::diagnostic::Code;
use phlo_core::secret::redact;
use phlo_core::spec::{RunContext, RunError, SourceRequest};

/// Credentials, resolved.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// `Authorization: Bearer …`
    Bearer(String),
    /// `Authorization: Basic …`
    Basic(String, String),
    /// A key in a header.
    Header(String, String),
    /// A key in a query parameter.
    Query(String, String),
}

/// What requests share: the agent, credentials, retry policy, rate limit, the secrets to mask.
pub(crate) struct Client {
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    interval: Option<Duration>,
    next_slot: Mutex<Option<Instant>>,
    timeout: Duration,
    secrets: Vec<String>,
}

/// A response that was not a failure.
pub(crate) struct Page {
    pub body: Vec<u8>,
    /// The `rel="next"` target of its `Link` header.
    pub link_next: Option<String>,
    /// The URL as shown (secrets masked).
    pub shown: String,
}

/// Percent-encodes a query component.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
        .replace("%7E", "~")
}

/// `url` with `query` appended.
pub(crate) fn with_query(url: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", q.join("&"))
}

/// The `rel="next"` URL of a `Link` header.
fn link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// When a `Retry-After` header asks to come back: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(s) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok().or(Some(Duration::ZERO))
}

fn humanize(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

impl Client {
    pub(crate) fn new(
        credentials: Option<Credentials>,
        timeout: Duration,
        retries: u32,
        backoff: Duration,
        max_backoff: Duration,
        rate_limit: Option<f64>,
        secrets: Vec<String>,
    ) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("phlo/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            credentials,
            retries,
            backoff,
            max_backoff,
            interval: rate_limit.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r)),
            next_slot: Mutex::new(None),
            timeout,
            secrets,
        }
    }

    /// Masks every secret in `text`.
    pub(crate) fn mask(&self, text: &str) -> String {
        let s: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &s)
    }

    /// Waits for the rate limit's next slot (or for the run to stop).
    fn wait_turn(&self, ctx: &RunContext) -> Result<(), RunError> {
        let Some(interval) = self.interval else { return Ok(()) };
        let at = {
            let mut next = self.next_slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + interval);
            at
        };
        sleep_until(ctx, at)
    }

    /// One request with the credentials, no retry: its status and the URL as shown.
    pub(crate) fn probe(
        &self,
        url: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<(u16, String), String> {
        let (req, shown) = self.request(url, query, headers);
        match req.call() {
            Ok(resp) => Ok((resp.status().as_u16(), shown)),
            Err(ureq::Error::Timeout(_)) => Err(format!("GET {shown} timed out after {}", humanize(self.timeout))),
            Err(e) => Err(format!("GET {shown} failed: {}", self.mask(&e.to_string()))),
        }
    }

    /// A GET of `url` + `query` with the credentials and `headers`, and the URL as shown.
    fn request(
        &self,
        url: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
    ) -> (ureq::RequestBuilder<ureq::typestate::WithoutBody>, String) {
        let mut query = query.to_vec();
        let mut shown_query = query.clone();
        if let Some(Credentials::Query(name, value)) = &self.credentials {
            query.push((name.clone(), value.clone()));
            shown_query.push((name.clone(), String::from("***")));
        }
        let shown = self.mask(&with_query(url, &shown_query));
        let mut req = self.agent.get(&with_query(url, &query));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match &self.credentials {
            Some(Credentials::Bearer(t)) => req = req.header("Authorization", &format!("Bearer {t}")),
            Some(Credentials::Basic(u, p)) => {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                req = req.header("Authorization", &format!("Basic {token}"));
            }
            Some(Credentials::Header(k, v)) => req = req.header(k.as_str(), v.as_str()),
            Some(Credentials::Query(..)) | None => {}
        }
        (req, shown)
    }

    /// GETs `url` + `query` with the credentials and `headers`: retried on 429, 5xx and
    /// transport errors (honouring `Retry-After`), failing at once on other 4xx statuses.
    pub(crate) fn get(
        &self,
        ctx: &RunContext,
        url: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<Page, RunError> {
        let shown = self.request(url, query, headers).1;
        let mut delay = self.backoff;
        let mut try_number = 0u32;
        loop {
            try_number += 1;
            self.wait_turn(ctx)?;
            if ctx.is_cancelled() {
                return Err(RunError::new(format!("stopped before GET {shown}")));
            }
            // a request waits no longer than the attempt may: its timeout stops it too
            let budget = match ctx.deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RunError::new(format!(
                            "GET {shown} was not sent: the asset's timeout was reached"
                        )));
                    }
                    left.min(self.timeout)
                }
                None => self.timeout,
            };
            let req = self.request(url, query, headers).0.config().timeout_global(Some(budget)).build();
            let t0 = Instant::now();
            let result = req.call().and_then(|mut resp| {
                let status = resp.status().as_u16();
                let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (link, after) = (header("link"), header("retry-after"));
                let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec()?;
                Ok((status, link, after, body))
            });
            let elapsed = t0.elapsed();
            let last = try_number > self.retries;
            let event = |status: Option<u16>, bytes: usize, error: Option<String>| {
                ctx.request(SourceRequest {
                    method: String::from("GET"),
                    url: shown.clone(),
                    status,
                    duration_ms: elapsed.as_millis() as u64,
                    bytes: bytes as u64,
                    try_number,
                    error,
                });
            };
            match result {
                Ok((status, link, after, body)) => {
                    event(Some(status), body.len(), None);
                    if status == 429 || status >= 500 {
                        let wait = after.as_deref().and_then(retry_after).unwrap_or(delay).min(self.max_backoff);
                        if last {
                            return Err(RunError::new(format!(
                                "GET {shown} answered {status} {} {try_number} time(s); giving up",
                                reason(status)
                            ))
                            .with_code(Code::InputFailed));
                        }
                        ctx.log(
                            "warn",
                            &format!(
                                "GET {shown} answered {status} {}; retrying in {}",
                                reason(status),
                                humanize(wait)
                            ),
                        );
                        sleep_until(ctx, Instant::now() + wait)?;
                        delay = (delay * 2).min(self.max_backoff);
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(RunError::permanent(format!(
                            "GET {shown} was refused: {status} {} — the API did not accept the credentials; check `auth` \
                             and the secret it names",
                            reason(status)
                        ))
                        .with_code(Code::InputFailed));
                    }
                    if status >= 400 {
                        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                        return Err(RunError::permanent(format!(
                            "GET {shown} answered {status} {}: {}",
                            reason(status),
                            self.mask(text.trim())
                        ))
                        .with_code(Code::InputFailed));
                    }
                    return Ok(Page { body, link_next: link.as_deref().and_then(link_next), shown });
                }
                Err(e) => {
                    let why = match &e {
                        ureq::Error::Timeout(_) => format!("timed out after {}", humanize(self.timeout)),
                        other => self.mask(&other.to_string()),
                    };
                    event(None, 0, Some(why.clone()));
                    // a bad URL or header, a TLS failure: trying again cannot help
                    let transient = matches!(
                        e,
                        ureq::Error::Timeout(_)
                            | ureq::Error::Io(_)
                            | ureq::Error::ConnectionFailed
                            | ureq::Error::HostNotFound
                            | ureq::Error::Protocol(_)
                            | ureq::Error::BodyStalled
                    );
                    if !transient {
                        return Err(RunError::permanent(format!("GET {shown} cannot be sent: {why}"))
                            .with_code(Code::InputFailed));
                    }
                    if last {
                        return Err(RunError::new(format!("GET {shown} failed {try_number} time(s): {why}"))
                            .with_code(Code::InputFailed));
                    }
                    ctx.log("warn", &format!("GET {shown} failed ({why}); retrying in {}", humanize(delay)));
                    sleep_until(ctx, Instant::now() + delay)?;
                    delay = (delay * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// Sleeps until `at`, waking early (with an error) when the attempt must stop — woken by the
/// cancellation itself.
fn sleep_until(ctx: &RunContext, at: Instant) -> Result<(), RunError> {
    if ctx.cancel.wait_until(at) {
        return Err(RunError::new("stopped while waiting to send a request"));
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_and_retry_after() {
        let h = r#"<https://api.x/items?page=2>; rel="next", <https://api.x/items?page=9>; rel="last""#;
        assert_eq!(link_next(h).as_deref(), Some("https://api.x/items?page=2"));
        assert_eq!(link_next(r#"<https://api.x/items?page=9>; rel="last""#), None);
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(with_query("http://h/x", &[(String::from("q"), String::from("a b&c"))]), "http://h/x?q=a%20b%26c");
    }
}
