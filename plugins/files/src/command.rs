//! Running a `command` asset's program: its own process group, its step in its environment
//! (`PHLO_RUN_ID`, `PHLO_ASSET`, `PHLO_PARTITION`, `PHLO_ATTEMPT` — an idempotency key for
//! what it writes), its output drained while it runs. The step ends when the program
//! exits: then whatever it left running — background children in its group, and on Linux
//! detached ones (a new session, `nohup`, `setsid`) found by a token in their environment —
//! is killed, and output still held open by them is not waited for.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use phlo_core::data::StepMark;

use crate::outputs::CommandConfig;

/// How long output readers may take after the program exited and what it left was killed.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// The environment variable that marks every process a command step started.
const TOKEN_VAR: &str = "PHLO_STEP_TOKEN";

/// The last lines of a program's stderr, for the error message.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A token unique to this spawn: the process, the time, a counter.
fn token() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{t}-{n}", std::process::id())
}

/// Kills the program's process group (children that hold its pipes open included) and, on
/// Linux, every process carrying its token, so that nothing it started outlives its step.
fn kill_everything(child: &mut std::process::Child, token: &str) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill();
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

/// Reads a pipe into a buffer shared with the caller, who may stop waiting for it.
fn drain(pipe: Option<Box<dyn Read + Send>>) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&buf);
    let handle = std::thread::spawn(move || {
        let Some(mut p) = pipe else { return };
        let mut chunk = [0u8; 8192];
        loop {
            match p.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(&chunk[..n]),
            }
        }
    });
    (buf, handle)
}

/// Waits for a reader until `until`; what it read so far either way.
fn collect(reader: (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>), until: Instant) -> Vec<u8> {
    let (buf, handle) = reader;
    while !handle.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::take(&mut *buf.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Runs the program to its end — or kills it when the run is cancelled or the attempt timed
/// out. Returns the output and whether it was stopped.
pub(crate) fn run_program(
    cfg: &CommandConfig,
    cwd: &std::path::Path,
    step: &StepMark,
    cancel: &phlo_core::execution::CancelToken,
) -> std::io::Result<(std::process::Output, bool)> {
    let token = token();
    let mut command = Command::new(&cfg.program);
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
        .stderr(Stdio::piped());
    // its own process group, so that stopping it stops everything it started
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    // drain both pipes while waiting, so a chatty program never blocks on a full pipe
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let mut stopped = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if cancel.is_cancelled() {
            stopped = true;
            kill_everything(&mut child, &token);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // the program exited: its step is over, and so is whatever it left behind
    kill_everything(&mut child, &token);
    let until = Instant::now() + DRAIN_GRACE;
    let stdout = collect(out, until);
    let stderr = collect(err, until);
    Ok((std::process::Output { status, stdout, stderr }, stopped))
}
