//! Processes, the one way xtask starts them (on duct): commands run to completion in their own
//! process group with wall and CPU time measured, quiet probes whose output is captured, and
//! servers that outlive the stage. Ctrl-C (SIGINT or SIGTERM) is forwarded to every running
//! child; a second one kills them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;

/// The error of a run stopped by Ctrl-C.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// How many interrupts arrived.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
/// Process groups of the children running now.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// Servers started by this process, kept so they are reaped when stopped.
static DAEMONS: Mutex<Vec<(u32, duct::Handle)>> = Mutex::new(Vec::new());

/// Let a closed stdout end the process quietly, as it ends `cat` or `head` (Rust's runtime
/// ignores SIGPIPE, and `println!` then panics). Only for commands that merely print.
pub fn default_sigpipe() {
    sys::default_sigpipe();
}

/// Forward Ctrl-C to children instead of dying at once: the caller then tears down.
pub fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        let first = INTERRUPTS.fetch_add(1, Ordering::SeqCst) == 0;
        if let Ok(groups) = RUNNING.lock() {
            for pgid in groups.iter() {
                sys::interrupt_group(*pgid, !first);
            }
        }
    })
    .context("could not install the Ctrl-C handler")
}

pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// Run `cmd` to completion in its own process group (Ctrl-C reaches it through us), with
/// `extra_env` on top of its own, its output to the terminal or to `log` (stdout to the
/// command's own file when it names one, whatever `log` is). Returns its wall
/// and CPU seconds and its exit status.
pub fn run_to_completion(
    cmd: &Cmd,
    root: &Path,
    extra_env: &[(String, String)],
    log: Option<&Path>,
) -> Result<(f64, f64, std::process::ExitStatus)> {
    let mut expr = expression(cmd, root, extra_env)?.unchecked();
    let stdout = match &cmd.stdout {
        Some(file) => {
            let file = root.join(file);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            Some(file)
        }
        None => None,
    };
    expr = match (stdout, log) {
        (Some(stdout), Some(log)) => expr.stdout_path(stdout).stderr_path(log),
        (Some(stdout), None) => expr.stdout_path(stdout),
        (None, Some(log)) => expr.stderr_to_stdout().stdout_path(log),
        (None, None) => expr,
    };
    let cpu_before = sys::children_cpu_seconds();
    let started = Instant::now();
    let handle = expr.start().with_context(|| {
        format!(
            "could not start `{}` (is it installed and on PATH?)",
            cmd.program
        )
    })?;
    let pgids: Vec<i32> = handle
        .pids()
        .into_iter()
        .filter_map(|p| i32::try_from(p).ok())
        .collect();
    register(&pgids, true);
    let waited = handle.wait().map(|o| o.status);
    register(&pgids, false);
    let status = waited.with_context(|| format!("waiting for `{}` failed", cmd.program))?;
    Ok((
        started.elapsed().as_secs_f64(),
        sys::children_cpu_seconds() - cpu_before,
        status,
    ))
}

/// Run several commands at once, each as [`run_to_completion`] does with its output to its own
/// log file. Returns each one's wall seconds and exit status in order, and the CPU seconds of
/// all of them together (a child's CPU time is known only for the children waited for so far,
/// so commands that overlap cannot be told apart).
pub fn run_concurrently(
    runs: &[(&Cmd, &Path)],
    root: &Path,
    extra_env: &[(String, String)],
) -> Result<(Vec<(f64, std::process::ExitStatus)>, f64)> {
    let cpu_before = sys::children_cpu_seconds();
    let finished: Vec<Result<(f64, f64, std::process::ExitStatus)>> = std::thread::scope(|scope| {
        let threads: Vec<_> = runs
            .iter()
            .map(|(cmd, log)| {
                scope.spawn(move || run_to_completion(cmd, root, extra_env, Some(log)))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the thread waiting for a command died"))
                })
            })
            .collect()
    });
    let cpu = sys::children_cpu_seconds() - cpu_before;
    let mut out = Vec::new();
    for result in finished {
        let (seconds, _, status) = result?;
        out.push((seconds, status));
    }
    Ok((out, cpu))
}

fn register(pgids: &[i32], running: bool) {
    if let Ok(mut set) = RUNNING.lock() {
        for pgid in pgids {
            if running {
                set.insert(*pgid);
            } else {
                set.remove(pgid);
            }
        }
    }
}

/// The duct expression of `cmd`, in its own process group, relative to `root`, with the
/// declared environment (see [`crate::environment`]), then `extra_env`, its env file and its
/// own variables — and nothing else of the outer environment.
fn expression(cmd: &Cmd, root: &Path, extra_env: &[(String, String)]) -> Result<duct::Expression> {
    // A relative program path (`target/xtask/venvs/lint/bin/python`) is relative to the
    // workspace root. Give duct an absolute one: it canonicalizes relative paths, which would
    // follow a venv's `bin/python` symlink out of the venv.
    // (A string, not a Path: duct would treat a bare `sh` Path as `./sh`.)
    let program = Path::new(&cmd.program);
    let program = if program.is_relative() && program.components().count() > 1 {
        root.join(program).into_os_string()
    } else {
        std::ffi::OsString::from(&cmd.program)
    };
    let mut env: std::collections::BTreeMap<String, String> = crate::environment::declared()
        .vars
        .iter()
        .cloned()
        .collect();
    env.extend(extra_env.iter().cloned());
    if let Some(file) = &cmd.env_file {
        let text = std::fs::read_to_string(root.join(file)).with_context(|| {
            format!(
                "`{}` reads its environment from {}, which is missing: run the stage that \
                 writes it first",
                cmd.program,
                file.display()
            )
        })?;
        env.extend(crate::cmd::parse_env(&text));
    }
    env.extend(cmd.env.iter().cloned());
    let expr = duct::cmd(program, &cmd.args).dir(root).full_env(env);
    Ok(expr.before_spawn(|command| {
        sys::own_process_group(command);
        Ok(())
    }))
}

/// Run a quiet probe and return its stdout; a non-zero exit is an error carrying stderr.
pub fn capture(cmd: &Cmd, root: &Path) -> Result<String> {
    let output = expression(cmd, root, &[])?
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("could not run `{}`", cmd.command_line()))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            cmd.command_line(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Start a server in its own process group, detached from our stdin, output to `log`.
/// Returns its pid. It keeps running after this process exits.
pub fn spawn_daemon(cmd: &Cmd, root: &Path, log: &Path) -> Result<u32> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let handle = expression(cmd, root, &[])?
        .stdin_null()
        .stderr_to_stdout()
        .stdout_path(log)
        .unchecked()
        .start()
        .with_context(|| format!("could not start `{}`", cmd.command_line()))?;
    let pid = handle
        .pids()
        .first()
        .copied()
        .context("a started process has a pid")?;
    DAEMONS
        .lock()
        .map_err(|_| anyhow::anyhow!("daemon registry poisoned"))?
        .push((pid, handle));
    // Until the child has exec'd, /proc shows our own command line (and, during the exec, an
    // empty one): wait for that to pass (bounded), so a check right after the start sees the
    // server, not a fork of us.
    let ours = std::fs::read(format!("/proc/{}/cmdline", std::process::id())).ok();
    let deadline = Instant::now() + Duration::from_secs(2);
    while ours.is_some() && Instant::now() < deadline {
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(now) if now.is_empty() || Some(&now) == ours.as_ref() => {}
            _ => break,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(pid)
}

/// Whether `pid` runs a program whose command line contains `needle` (guards against a
/// recycled pid; on systems without /proc, only liveness is checked).
pub fn process_matches(pid: u32, needle: &str) -> bool {
    if !alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => String::from_utf8_lossy(&raw).contains(needle),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

fn alive(pid: u32) -> bool {
    // Reap it first if it is our own exited child.
    if let Ok(daemons) = DAEMONS.lock()
        && let Some((_, handle)) = daemons.iter().find(|(p, _)| *p == pid)
    {
        return matches!(handle.try_wait(), Ok(None));
    }
    sys::exists(pid)
}

/// Stop a server started by [`spawn_daemon`] (by this or an earlier process): SIGTERM to its
/// process group, then SIGKILL after `grace`. Returns once it is gone.
pub fn stop_daemon(pid: u32, grace: Duration) -> Result<()> {
    for (force, wait) in [(false, grace), (true, Duration::from_secs(5))] {
        sys::terminate_group(pid, force)?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !alive(pid) {
                if let Ok(mut daemons) = DAEMONS.lock() {
                    daemons.retain(|(p, _)| *p != pid);
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("process {pid} did not stop, even after SIGKILL")
}

/// Process control that differs between Unix and Windows.
#[cfg(unix)]
mod sys {
    use std::os::unix::process::CommandExt;

    use anyhow::{Context as _, Result};

    /// Children get their own process group, so Ctrl-C reaches them through us (and a
    /// server started for later stages does not die with our terminal's Ctrl-C).
    pub fn own_process_group(command: &mut std::process::Command) {
        command.process_group(0);
    }

    pub fn default_sigpipe() {
        // SAFETY: restores the default disposition of one signal; no memory involved.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }

    pub fn interrupt_group(pgid: i32, force: bool) {
        let signal = if force { libc::SIGKILL } else { libc::SIGINT };
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe { libc::kill(-pgid, signal) };
    }

    pub fn terminate_group(pid: u32, force: bool) -> Result<()> {
        let group = i32::try_from(pid).context("pid out of range")?;
        let signal = if force { libc::SIGKILL } else { libc::SIGTERM };
        // SAFETY: kill(2) on a process group; no memory involved.
        unsafe { libc::kill(-group, signal) };
        Ok(())
    }

    pub fn exists(pid: u32) -> bool {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(pid, 0) == 0 };
        // An exited process whose parent does not reap it (an orphan under a PID 1 that never
        // waits) lingers as a zombie: it is gone for our purposes.
        exists && !is_zombie(pid)
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    /// CPU seconds (user + system) of every child waited for so far.
    pub fn children_cpu_seconds() -> f64 {
        // SAFETY: getrusage fills the zeroed struct we pass; no other memory involved.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
                return 0.0;
            }
            usage
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }
}

/// On Windows a console's Ctrl-C already reaches every child, and the native services (the
/// only background processes) need a Unix-like system, so there is less to do.
#[cfg(windows)]
mod sys {
    use anyhow::{Result, bail};

    pub fn own_process_group(_command: &mut std::process::Command) {}

    pub fn default_sigpipe() {}

    pub fn interrupt_group(_pgid: i32, _force: bool) {}

    pub fn terminate_group(pid: u32, _force: bool) -> Result<()> {
        bail!("stopping background process {pid} is only supported on Unix-like systems")
    }

    pub fn exists(_pid: u32) -> bool {
        false
    }

    pub fn children_cpu_seconds() -> f64 {
        0.0
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn capture_returns_stdout_and_reports_failures() {
        let root = std::env::temp_dir();
        let out = capture(&Cmd::new("sh").args(["-c", "echo hello"]), &root).unwrap();
        assert_eq!(out.trim(), "hello");
        let err = capture(&Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]), &root);
        assert!(err.unwrap_err().to_string().contains("oops"));
    }

    #[test]
    fn relative_programs_keep_their_path_through_symlinks() {
        // A venv's bin/python is a symlink; the interpreter finds its venv from the path it
        // was started by, so that path must survive.
        let dir = std::env::temp_dir().join(format!("xtask-symlink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("venv/bin")).unwrap();
        std::fs::write(dir.join("real.sh"), "#!/bin/sh\necho \"$0\"\n").unwrap();
        std::fs::set_permissions(
            dir.join("real.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.join("real.sh"), dir.join("venv/bin/python")).unwrap();
        let out = capture(&Cmd::new("venv/bin/python"), &dir).unwrap();
        assert_eq!(
            out.trim(),
            dir.join("venv/bin/python").display().to_string()
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn daemons_start_and_stop() {
        let dir = std::env::temp_dir().join(format!("xtask-daemon-{}", std::process::id()));
        let log = dir.join("sleep.log");
        let pid = spawn_daemon(&Cmd::new("sleep").arg("300"), &dir, &log).unwrap();
        assert!(process_matches(pid, "sleep"));
        stop_daemon(pid, Duration::from_secs(5)).unwrap();
        assert!(!process_matches(pid, "sleep"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
