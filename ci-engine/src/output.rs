//! How xtask talks to people: a terminal (colour only when it is one and `NO_COLOR` is unset)
//! and GitHub Actions (log groups, annotations, step summary, `$GITHUB_ENV`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Bold,
    Good,
    Bad,
    Warn,
    Dim,
}

#[derive(Clone, Debug)]
pub struct Output {
    color: bool,
    github_actions: bool,
}

impl Output {
    pub fn from_env(github_actions: bool) -> Output {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            color: !no_color && std::io::stderr().is_terminal(),
            github_actions,
        }
    }

    /// No colour, no GitHub Actions commands (tests; the `testing` feature).
    #[cfg(any(test, feature = "testing"))]
    pub fn plain() -> Output {
        Output {
            color: false,
            github_actions: false,
        }
    }

    pub fn paint(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            _ if !self.color => return text.to_string(),
            Tone::Bold => "1",
            Tone::Good => "32",
            Tone::Bad => "1;31",
            Tone::Warn => "33",
            Tone::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A line on stderr, where all progress goes (stdout is for what was asked for).
    pub fn say(&self, tone: Tone, text: &str) {
        eprintln!("{}", self.paint(tone, text));
    }

    pub fn stage_header(&self, invocation: &str) {
        self.say(Tone::Bold, &format!("==> cargo xtask {invocation}"));
    }

    /// Echo a command before it runs; under GitHub Actions it opens a log group.
    pub fn begin_command(&self, line: &str) {
        if self.github_actions {
            eprintln!("::group::{}", escape_data(line));
        }
        self.say(Tone::Bold, &format!("$ {line}"));
    }

    pub fn end_command(&self) {
        if self.github_actions {
            eprintln!("::endgroup::");
        }
    }

    pub fn warn(&self, text: &str) {
        self.say(Tone::Warn, &format!("warning: {text}"));
        if self.github_actions {
            eprintln!("::warning title=xtask::{}", escape_data(text));
        }
    }

    /// The error annotation that names a failed stage.
    pub fn stage_failed(&self, stage: &str, error: &str) {
        self.say(Tone::Bad, &format!("error: stage {stage} failed: {error}"));
        if self.github_actions {
            eprintln!(
                "::error title=xtask stage {}::{}",
                escape_property(stage),
                escape_data(&format!("stage {stage} failed: {error}"))
            );
        }
    }

    /// Append Markdown to `$GITHUB_STEP_SUMMARY` (GitHub Actions only).
    pub fn step_summary(&self, markdown: &str) {
        if self.github_actions {
            append_to_env_file("GITHUB_STEP_SUMMARY", markdown);
        }
    }

    /// Export variables to later steps of the job through `$GITHUB_ENV`.
    pub fn export_env(&self, vars: &[(String, String)]) {
        if self.github_actions {
            let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            append_to_env_file("GITHUB_ENV", &text);
        }
    }

    /// Under GitHub Actions, `name=value` step outputs (`$GITHUB_OUTPUT`).
    pub fn step_outputs(&self, outputs: &[(String, String)]) {
        if self.github_actions {
            let text: String = outputs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            append_to_env_file("GITHUB_OUTPUT", &text);
        }
    }
}

fn append_to_env_file(variable: &str, text: &str) {
    let Some(path) = std::env::var_os(variable).map(PathBuf::from) else {
        eprintln!("warning: ${variable} is not set; not writing to it");
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: could not append to ${variable} ({}): {e}",
            path.display()
        );
    }
}

/// A GitHub annotation, `::level file=…,line=…,title=…::message` (`level` is `error`, `warning`
/// or `notice`; the line only with a file), escaped.
pub fn annotation(
    level: &str,
    file: Option<&str>,
    line: Option<u64>,
    title: &str,
    message: &str,
) -> String {
    let mut properties = Vec::new();
    if let Some(file) = file {
        properties.push(format!("file={}", escape_property(file)));
        properties.extend(line.map(|line| format!("line={line}")));
    }
    properties.push(format!("title={}", escape_property(title)));
    format!(
        "::{level} {}::{}",
        properties.join(","),
        escape_data(message)
    )
}

/// Escaping of a workflow command's message (GitHub's toolkit rules).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn no_colour_without_a_terminal() {
        assert_eq!(Output::plain().paint(Tone::Bad, "x"), "x");
    }
}
