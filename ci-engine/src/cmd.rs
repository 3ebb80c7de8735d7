//! External commands as data: a program, its arguments and environment, shown the way a shell
//! user would type them in the workspace root, where every command runs.

use std::fmt;
use std::path::{Path, PathBuf};

/// An external command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// `KEY=VALUE` lines read when the command starts (the services' endpoints).
    pub env_file: Option<PathBuf>,
    /// A file its stdout goes to (`> file`), relative to the workspace root.
    pub stdout: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_file: None,
            stdout: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.args.extend(
            args.into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        );
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.env
            .push((key.into(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    pub fn env_file(mut self, path: impl AsRef<Path>) -> Cmd {
        self.env_file = Some(path.as_ref().to_path_buf());
        self
    }

    pub fn stdout(mut self, path: impl AsRef<Path>) -> Cmd {
        self.stdout = Some(path.as_ref().to_path_buf());
        self
    }

    /// The command line alone, shell-quoted.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `env $(cat file) KEY=value program args > out` — what a shell user would type in the
/// workspace root, where every command runs.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.env_file {
            write!(f, "env $(cat {}) ", quote(&file.to_string_lossy()))?;
        }
        for (key, value) in &self.env {
            write!(f, "{key}={} ", quote(value))?;
        }
        f.write_str(&self.command_line())?;
        if let Some(file) = &self.stdout {
            write!(f, " > {}", quote(&file.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Quote `word` for a POSIX shell when it needs it. On Windows a path's backslashes and drive
/// colon are plain characters (cmd and PowerShell users type them as they are).
pub fn quote(word: &str) -> String {
    quote_for(word, cfg!(windows))
}

fn quote_for(word: &str, windows: bool) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric() || "-_./:=,+@%^".contains(c) || (windows && c == '\\')
        });
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `KEY=VALUE` lines (an env file); blank lines and `#` comments are skipped.
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_render_like_a_shell_line() {
        let cmd = Cmd::new("cargo")
            .args(["nextest", "run", "-E", "not binary_id(app::integration)"])
            .env("RUST_BACKTRACE", "1")
            .env_file("target/xtask/services.env")
            .stdout("target/out.json");
        assert_eq!(
            cmd.to_string(),
            "env $(cat target/xtask/services.env) RUST_BACKTRACE=1 cargo nextest run -E \
             'not binary_id(app::integration)' > target/out.json"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(
            quote_for(r"C:\tools\nextest.exe", true),
            r"C:\tools\nextest.exe"
        );
        assert_eq!(quote_for(r"C:\tools", false), r"'C:\tools'");
    }
}
