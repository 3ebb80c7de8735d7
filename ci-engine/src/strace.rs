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

/// How a syscall that names files touches them: the (dirfd, path) argument positions of what
/// it reads and of what it makes anew.
struct Touch {
    reads: &'static [(Option<usize>, usize)],
    makes: &'static [(Option<usize>, usize)],
}

fn touch(syscall: &str) -> Option<Touch> {
    let (reads, makes): (&[_], &[_]) = match syscall {
        "open" | "creat" => (&[(None, 0)], &[(None, 0)]),
        "openat" | "openat2" => (&[(Some(0), 1)], &[(Some(0), 1)]),
        "execve" => (&[(None, 0)], &[]),
        "execveat" => (&[(Some(0), 1)], &[]),
        // The source's contents live on under the new name.
        "link" | "rename" => (&[(None, 0)], &[(None, 1)]),
        "linkat" | "renameat" | "renameat2" => (&[(Some(0), 1)], &[(Some(2), 3)]),
        "symlink" => (&[], &[(None, 1)]),
        "symlinkat" => (&[], &[(Some(1), 2)]),
        _ => return None,
    };
    Some(Touch { reads, makes })
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
    let Some((syscall, rest)) = line.split_once('(') else {
        return;
    };
    let Some(touch) = touch(syscall) else {
        return;
    };
    let args = split_args(rest);
    // An open reads what was there unless it truncates or creates exclusively, and makes the
    // file anew only then; an open for writing alone (appending) does neither.
    let (reads, makes) = match syscall {
        "open" | "openat" | "openat2" | "creat" => {
            let flags = args.get(if syscall == "open" { 1 } else { 2 });
            let flags = flags.map(String::as_str).unwrap_or("");
            if flags.contains("O_DIRECTORY") {
                return;
            }
            let has = |f: &str| flags.contains(f);
            let fresh = syscall == "creat" || has("O_TRUNC") || has("O_EXCL");
            (!fresh && !has("O_WRONLY"), fresh)
        }
        _ => (true, true),
    };
    // What an open returned, as strace resolved it (`= 3</src/repo/file>`): the real path.
    let opened = rest
        .rsplit_once(") = ")
        .and_then(|(_, ret)| decoded(ret))
        .map(PathBuf::from);
    let name_of = |(dirfd, position): (Option<usize>, usize)| -> Option<String> {
        let absolute = match (&opened, syscall.starts_with("open") || syscall == "creat") {
            (Some(path), true) => path.clone(),
            _ => {
                let path = args.get(position).and_then(|a| unquote(a))?;
                let dir = dirfd.and_then(|i| args.get(i)).and_then(|a| decoded(a));
                match (Path::new(&path).is_absolute(), dir) {
                    (true, _) => PathBuf::from(&path),
                    (false, Some(dir)) => Path::new(&dir).join(&path),
                    // No directory given: every traced command starts in the root.
                    (false, None) => root.join(&path),
                }
            }
        };
        relative(&normalize(&absolute), root, tools)
    };
    if reads {
        for place in touch.reads {
            if let Some(name) = name_of(*place)
                && !out.written.contains(&name)
            {
                out.read.insert(name);
            }
        }
    }
    if makes {
        for place in touch.makes {
            if let Some(name) = name_of(*place)
                && !out.read.contains(&name)
            {
                out.written.insert(name);
            }
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

/// A quoted path argument, unescaped (`"a\\"b"` → `a"b`, octal escapes of non-ASCII bytes
/// decoded); `None` for anything else.
fn unquote(arg: &str) -> Option<String> {
    let inner = arg.strip_prefix('"')?;
    let inner = inner
        .strip_suffix("\"...")
        .or_else(|| inner.strip_suffix('"'))?;
    let mut out: Vec<u8> = Vec::new();
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let next = bytes[i + 1];
        let digits = bytes[i + 1..]
            .iter()
            .take(3)
            .take_while(|b| (b'0'..=b'7').contains(b))
            .count();
        if digits > 0 {
            let text = std::str::from_utf8(&bytes[i + 1..i + 1 + digits]).ok()?;
            out.push(u8::from_str_radix(text, 8).ok()?);
            i += 1 + digits;
            continue;
        }
        out.push(match next {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'v' => 0x0b,
            b'f' => 0x0c,
            other => other,
        });
        i += 2;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The path strace decoded for a file descriptor: `AT_FDCWD</src/repo>` → `/src/repo`.
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
