//! Reading strace's logs: which files a traced process tree read, and which it wrote first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

/// What the traced processes of one stage did to files, as paths relative to the workspace
/// root or as `<tools>/…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accesses {
    /// Opened for reading, or executed.
    pub read: BTreeSet<String>,
    /// Created, written, linked or renamed to, before any read of it.
    pub written: BTreeSet<String>,
}

/// The syscalls that name files, with the argument positions of their (dirfd, path) pairs.
fn path_args(syscall: &str) -> &'static [(Option<usize>, usize)] {
    match syscall {
        "open" | "creat" | "execve" => &[(None, 0)],
        "openat" | "openat2" | "execveat" => &[(Some(0), 1)],
        "link" | "rename" | "symlink" => &[(None, 1)],
        "linkat" | "renameat" | "renameat2" => &[(Some(2), 3)],
        "symlinkat" => &[(Some(1), 2)],
        _ => &[],
    }
}

/// Parse a log written by `strace -f -y -e status=successful` (see [`tracer`]).
pub fn parse(log: &str, root: &Path, tools: &Path) -> Accesses {
    let mut out = Accesses::default();
    // pid → the first half of a call another process's line interrupted.
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    for raw in log.lines() {
        let (pid, rest) = match raw.split_once(' ') {
            Some((pid, rest)) if pid.chars().all(|c| c.is_ascii_digit()) => {
                (pid.to_string(), rest.trim_start())
            }
            _ => (String::new(), raw),
        };
        let line = if let Some(first) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, first.to_string());
            continue;
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            match pending.remove(&pid) {
                Some(first) => format!("{first}{tail}"),
                None => continue,
            }
        } else {
            rest.to_string()
        };
        record(&line, root, tools, &mut out);
    }
    out
}

/// Record one complete call.
fn record(line: &str, root: &Path, tools: &Path, out: &mut Accesses) {
    let Some((syscall, args)) = line.split_once('(') else {
        return;
    };
    let places = path_args(syscall);
    if places.is_empty() {
        return;
    }
    let args = split_args(args);
    // (whether it reads what was there, whether it writes)
    let (reads, writes) = match syscall {
        "open" | "openat" | "openat2" | "creat" => {
            let flags = args.get(if syscall == "open" { 1 } else { 2 });
            let flags = flags.map(String::as_str).unwrap_or("");
            if flags.contains("O_DIRECTORY") {
                return;
            }
            let has = |f: &str| flags.contains(f);
            let fresh = syscall == "creat" || has("O_TRUNC") || has("O_EXCL");
            (
                !fresh && !has("O_WRONLY"),
                fresh || has("O_WRONLY") || has("O_RDWR") || has("O_CREAT"),
            )
        }
        "execve" | "execveat" => (true, false),
        _ => (false, true),
    };
    for (dirfd, path) in places {
        let Some(path) = args.get(*path).and_then(|a| unquote(a)) else {
            continue;
        };
        let dir = dirfd
            .and_then(|i| args.get(i))
            .and_then(|a| decoded(a))
            .map(PathBuf::from);
        let absolute = match (Path::new(&path).is_absolute(), dir) {
            (true, _) => PathBuf::from(&path),
            (false, Some(dir)) => dir.join(&path),
            (false, None) => continue,
        };
        let Some(name) = relative(&normalize(&absolute), root, tools) else {
            continue;
        };
        if reads && !out.written.contains(&name) {
            out.read.insert(name.clone());
        }
        if writes && !out.read.contains(&name) {
            out.written.insert(name);
        }
    }
}

/// Split a call's arguments at top-level commas (strings, brackets and `<…>` decodings kept
/// whole).
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for c in args.chars() {
        if in_string {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            '(' | '[' | '{' | '<' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' | '>' if depth > 0 => {
                depth -= 1;
                current.push(c);
            }
            ')' if depth == 0 => break,
            ',' if depth == 0 => out.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// A quoted path argument, unescaped (`"a\"b"` → `a"b`); `None` for anything else.
fn unquote(arg: &str) -> Option<String> {
    let inner = arg.strip_prefix('"')?;
    let inner = inner
        .strip_suffix("\"...")
        .or_else(|| inner.strip_suffix('"'))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The path strace decoded for a file descriptor: `AT_FDCWD</work/repo>` → `/work/repo`.
fn decoded(arg: &str) -> Option<String> {
    let start = arg.find('<')?;
    let end = arg.rfind('>')?;
    (end > start).then(|| arg[start + 1..end].to_string())
}

/// `a/./b/../c` → `a/c`, without touching the file system (links were resolved by strace's
/// decoding where it matters).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A path as the audit names it: relative to the root, `<tools>/…`, or `None` outside both.
fn relative(path: &Path, root: &Path, tools: &Path) -> Option<String> {
    if let Ok(rest) = path.strip_prefix(tools) {
        return Some(format!("<tools>/{}", rest.to_string_lossy()));
    }
    let rest = path.strip_prefix(root).ok()?;
    let rest = rest.to_string_lossy().replace('\\', "/");
    (!rest.is_empty()).then_some(rest)
}

/// The command that runs `cmd` under the tracer, its log written to `log`.
pub fn tracer(cmd: &Cmd, log: &Path) -> Cmd {
    let mut traced = Cmd::new("strace")
        .args(["-f", "-qq", "-y", "--seccomp-bpf"])
        .args(["-e", "trace=%file,execve", "-e", "status=successful", "-o"])
        .arg(log)
        .arg("--")
        .arg(&cmd.program)
        .args(&cmd.args);
    traced.env = cmd.env.clone();
    traced.env_file = cmd.env_file.clone();
    traced.stdout = cmd.stdout.clone();
    traced
}
