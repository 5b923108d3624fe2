//! Running a `command` asset's program: its own process group, its step in its environment
//! (`PHLO_RUN_ID`, `PHLO_ASSET`, `PHLO_PARTITION`, `PHLO_ATTEMPT` — an idempotency key for
//! what it writes), its output drained while it runs. The step ends when the program
//! exits: then whatever it left running — background children in its group, and on Linux
//! detached ones (a new session, `nohup`, `setsid`) found by a token in their environment —
//! is killed, and output still held open by them is not waited for.

use std::process::Stdio;
use std::time::Duration;

use phlo_core::data::StepMark;

use crate::outputs::CommandConfig;

/// How long output readers may take after the program exited and what it left was killed.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// The environment variable that marks every process a command step started.
const TOKEN_VAR: &str = "PHLO_STEP_TOKEN";

/// A token unique to this spawn: the process, the time, a counter.
fn token() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{t}-{n}", std::process::id())
}

/// Kills the program's process group (children that hold its pipes open included) and, on
/// Linux, every process carrying its token, so that nothing it started outlives its step.
fn kill_everything(pid: Option<u32>, token: &str) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    // a process may fork while the sweep kills: sweep until none is left (a few rounds)
    for _ in 0..5 {
        if sweep(token) == 0 {
            break;
        }
    }
}

/// Kills the processes whose environment holds `PHLO_STEP_TOKEN=token`; returns how many.
#[cfg(target_os = "linux")]
fn sweep(token: &str) -> usize {
    let wanted = format!("{TOKEN_VAR}={token}");
    let mut killed = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

#[cfg(not(target_os = "linux"))]
fn sweep(_token: &str) -> usize {
    0
}

/// Lines of a program's output shown as events: the first ones as they come, the last ones
/// when it ends; the whole output is in the step's log file.
const HEAD_LINES: usize = 20;
const TAIL_LINES: usize = 20;
/// The longest line an event carries (longer ones are cut, saying by how much).
const MAX_LINE: usize = 2_000;

/// Splits a stream of bytes into lines, keeping at most [`MAX_LINE`] bytes of each.
#[derive(Default)]
struct Lines {
    current: Vec<u8>,
    dropped: usize,
    count: u64,
}

impl Lines {
    fn feed(&mut self, mut chunk: &[u8], on_line: &mut dyn FnMut(String)) {
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            self.push(&chunk[..i]);
            on_line(self.take());
            chunk = &chunk[i + 1..];
        }
        self.push(chunk);
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.current.len());
        self.current.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.dropped += bytes.len().saturating_sub(room);
    }

    fn take(&mut self) -> String {
        self.count += 1;
        let mut line = String::from_utf8_lossy(&self.current).trim_end_matches('\r').to_string();
        if self.dropped > 0 {
            line.push_str(&format!(" … [{} more bytes]", self.dropped));
        }
        self.current.clear();
        self.dropped = 0;
        line
    }

    /// The last line, when the output did not end with a line break.
    fn finish(&mut self, on_line: &mut dyn FnMut(String)) {
        if !self.current.is_empty() || self.dropped > 0 {
            on_line(self.take());
        }
    }
}

/// The excerpt of stdout that becomes events: the first lines at once, the last ones kept.
struct Excerpt<'a> {
    log: &'a (dyn Fn(&str) + Sync),
    shown: usize,
    tail: std::collections::VecDeque<String>,
}

impl Excerpt<'_> {
    fn line(&mut self, line: String) {
        if self.shown < HEAD_LINES {
            self.shown += 1;
            (self.log)(&line);
            return;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// Emits the kept last lines, after a line saying how many were cut.
    fn end(self, total: u64, log_file: &str) {
        let cut = total.saturating_sub((self.shown + self.tail.len()) as u64);
        if cut > 0 {
            (self.log)(&format!("… {cut} line(s) not shown here; the whole output is in {log_file}"));
        }
        for line in &self.tail {
            (self.log)(line);
        }
    }
}

/// What a program did.
pub(crate) struct Finished {
    pub status: std::process::ExitStatus,
    /// It was stopped (the run cancelled, or the attempt timed out).
    pub stopped: bool,
    pub stdout_lines: u64,
    /// The last lines of its stderr, for the error message.
    pub stderr_tail: Vec<String>,
}

/// Where the output of a program goes: its step's log file, in the order it arrives.
pub(crate) struct LogFile {
    pub path: std::path::PathBuf,
    /// The path as shown to the user (relative to the project).
    pub shown: String,
}

/// Reads from a pipe while it is open; pends forever once it is closed.
async fn read_pipe<R: tokio::io::AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Runs the program to its end — or kills it when the run is cancelled or the attempt timed
/// out — waiting on the process itself (no polling). Its stdout and stderr go to `log` as
/// they arrive; the first and last lines of stdout are logged as events through `emit`.
///
/// # Errors
/// What went wrong, as a sentence naming the program: it could not start, its log could not
/// be opened or written (then it is killed with everything it started), it could not be
/// waited for.
pub(crate) async fn run_program(
    cfg: &CommandConfig,
    cwd: &std::path::Path,
    step: &StepMark,
    cancel: &phlo_core::execution::CancelToken,
    log: &LogFile,
    emit: &(dyn Fn(&str) + Sync),
) -> Result<Finished, String> {
    use std::io::Write;
    let program = &cfg.program;
    let token = token();
    let mut command = tokio::process::Command::new(program);
    command
        .args(&cfg.args)
        .envs(&cfg.env)
        .env("PHLO_RUN_ID", &step.run_id)
        .env("PHLO_ASSET", &step.asset)
        .env("PHLO_PARTITION", step.partition.as_deref().unwrap_or(""))
        .env("PHLO_ATTEMPT", step.attempt.to_string())
        .env(TOKEN_VAR, &token)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // its own process group, so that stopping it stops everything it started
    #[cfg(unix)]
    command.process_group(0);
    let open = || -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        if let Some(dir) = log.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log.path)?;
        let mut file = std::io::BufWriter::with_capacity(1 << 16, file);
        writeln!(
            file,
            "--- phlo: `{program}` for {}{}, attempt {} ---",
            step.asset,
            step.partition.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default(),
            step.attempt
        )?;
        Ok(file)
    };
    let mut file = open().map_err(|e| format!("cannot open the log of `{program}` ({}): {e}", log.shown))?;
    let mut child = command.spawn().map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pid = child.id();
    let followed = follow(&mut child, pid, &token, cancel, &mut file, log, emit).await;
    followed.map_err(|e| {
        // nothing it started outlives a step that could not follow it
        kill_everything(pid, &token);
        format!("`{program}` was stopped: {e}")
    })
}

/// Follows a started program to its end: its output into `file` (and the excerpt into
/// `emit`), its exit, a cancellation.
async fn follow(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
    token: &str,
    cancel: &phlo_core::execution::CancelToken,
    file: &mut std::io::BufWriter<std::fs::File>,
    log: &LogFile,
    emit: &(dyn Fn(&str) + Sync),
) -> Result<Finished, String> {
    use std::io::Write;
    let write_err = |e: std::io::Error| format!("its output could not be written to {}: {e}", log.shown);
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let (mut obuf, mut ebuf) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let (mut olines, mut elines) = (Lines::default(), Lines::default());
    let mut excerpt = Excerpt { log: emit, shown: 0, tail: std::collections::VecDeque::new() };
    let mut stderr_tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut keep_err = |line: String| {
        if stderr_tail.len() == 5 {
            stderr_tail.pop_front();
        }
        stderr_tail.push_back(line);
    };
    let (mut status, mut stopped) = (None, false);
    // after the exit, output still held open by what it left is not waited for long
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        if status.is_some() && out.is_none() && err.is_none() {
            break;
        }
        tokio::select! {
            r = read_pipe(&mut out, &mut obuf) => match r {
                Ok(n) if n > 0 => {
                    file.write_all(&obuf[..n]).map_err(write_err)?;
                    olines.feed(&obuf[..n], &mut |l| excerpt.line(l));
                }
                _ => out = None,
            },
            r = read_pipe(&mut err, &mut ebuf) => match r {
                Ok(n) if n > 0 => {
                    file.write_all(&ebuf[..n]).map_err(write_err)?;
                    elines.feed(&ebuf[..n], &mut keep_err);
                }
                _ => err = None,
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| format!("its end could not be waited for: {e}"))?);
                // the program exited: its step is over, and so is whatever it left behind
                kill_everything(pid, token);
                drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
            }
            () = cancel.cancelled(), if !stopped && status.is_none() => {
                stopped = true;
                kill_everything(pid, token);
            }
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => {
                break;
            }
        }
    }
    olines.finish(&mut |l| excerpt.line(l));
    elines.finish(&mut keep_err);
    file.flush().map_err(write_err)?;
    let stdout_lines = olines.count;
    excerpt.end(stdout_lines, &log.shown);
    // the loop ends only once the exit was seen
    let status = status.ok_or_else(|| String::from("its end was not seen"))?;
    Ok(Finished { status, stopped, stdout_lines, stderr_tail: stderr_tail.into() })
}
