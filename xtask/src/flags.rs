//! Stage flags, each declared once with its value's type and help: the stages' command lines,
//! `cargo xtask ci`, the generated workflows and `--help` all take them from here, and one
//! parser (lexopt) reads them.

use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;

/// A flag a stage accepts.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    /// The value's placeholder, or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// Parsed values of a stage's flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageArgs {
    /// `--partition hash:M/N` for the test stages.
    pub partition: Option<String>,
    /// `--backend auto|docker|native` for docker-up.
    pub backend: Option<String>,
    /// `--full` for python-test: add the tests that need services.
    pub full: bool,
    /// `--python X.Y[,X.Y…]` for python-test: test exactly these interpreters (each must be
    /// found); empty: every one found, 3.11 required.
    pub pythons: Vec<String>,
    /// `--index-url URL` for upstream.
    pub index_url: Option<String>,
}

impl StageArgs {
    /// Parse `args` against the `flags` the stage `stage` accepts (lexopt, like every other
    /// command line of xtask).
    pub fn parse(stage: &str, flags: &[Flag], args: &[String]) -> Result<StageArgs> {
        let mut parsed = StageArgs::default();
        let mut parser = lexopt::Parser::from_args(args.iter().cloned());
        while let Some(arg) = parser.next().context("could not read the arguments")? {
            let shown = match &arg {
                Long(name) => format!("--{name}"),
                Short(c) => format!("-{c}"),
                Value(v) => v.to_string_lossy().into_owned(),
            };
            let Some(flag) = flags.iter().find(|f| f.name == shown) else {
                bail!(
                    "unknown argument `{shown}` for stage `{stage}`; it accepts: {}",
                    describe_flags(flags)
                );
            };
            let value = match flag.value {
                None => {
                    if parser.optional_value().is_some() {
                        bail!("`{}` takes no value", flag.name);
                    }
                    None
                }
                Some(placeholder) => match parser.value() {
                    Ok(v) => Some(
                        v.into_string()
                            .map_err(|_| anyhow::anyhow!("`{}` takes plain text", flag.name))?,
                    ),
                    Err(_) => bail!("`{}` needs a value: {} {placeholder}", flag.name, flag.name),
                },
            };
            match flag.name {
                "--partition" => parsed.partition = value.map(check_partition).transpose()?,
                "--backend" => parsed.backend = value.map(check_backend).transpose()?,
                "--full" => parsed.full = true,
                "--python" => {
                    parsed.pythons = value.map(check_pythons).transpose()?.unwrap_or_default()
                }
                "--index-url" => parsed.index_url = value,
                other => unreachable!("flag {other} is declared but not parsed"),
            }
        }
        Ok(parsed)
    }

    /// The arguments that reproduce these values, in flag order.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = &self.partition {
            args.extend(["--partition".to_string(), p.clone()]);
        }
        if let Some(b) = &self.backend {
            args.extend(["--backend".to_string(), b.clone()]);
        }
        if self.full {
            args.push("--full".to_string());
        }
        if !self.pythons.is_empty() {
            args.extend(["--python".to_string(), self.pythons.join(",")]);
        }
        if let Some(u) = &self.index_url {
            args.extend(["--index-url".to_string(), u.clone()]);
        }
        args
    }
}

fn describe_flags(flags: &[Flag]) -> String {
    let mut names: Vec<String> = flags
        .iter()
        .map(|f| match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        })
        .collect();
    names.extend(["--dry-run".to_string(), "--help".to_string()]);
    names.join(", ")
}

fn check_partition(value: String) -> Result<String> {
    let valid = value
        .strip_prefix("hash:")
        .or_else(|| value.strip_prefix("count:"))
        .and_then(|mn| mn.split_once('/'))
        .and_then(|(m, n)| Some((m.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .is_some_and(|(m, n)| m >= 1 && m <= n);
    if !valid {
        bail!("invalid partition `{value}`: expected hash:M/N or count:M/N with 1 <= M <= N");
    }
    Ok(value)
}

fn check_pythons(value: String) -> Result<Vec<String>> {
    let mut versions: Vec<String> = Vec::new();
    for version in value.split(',').map(str::trim) {
        if !crate::pins::PYTHON_VERSIONS.contains(&version) {
            bail!(
                "invalid Python version `{version}` in `--python {value}`: expected a \
                 comma-separated list of {}",
                crate::pins::PYTHON_VERSIONS.join(", ")
            );
        }
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_string());
        }
    }
    Ok(versions)
}

fn check_backend(value: String) -> Result<String> {
    match value.as_str() {
        "auto" | "docker" | "native" => Ok(value),
        _ => bail!("invalid backend `{value}`: expected auto, docker or native"),
    }
}

pub const BACKEND: Flag = Flag {
    name: "--backend",
    value: Some("auto|docker|native"),
    help: "where the servers run (default: $XTASK_SERVICES_BACKEND, else auto: docker when an \
           engine answers)",
};

pub const SERVICES_FULL: Flag = Flag {
    name: "--full",
    value: None,
    help: "also run the tests that need the S3 and Azure services",
};

pub const PYTHON: Flag = Flag {
    name: "--python",
    value: Some("X.Y[,X.Y...]"),
    help: "test exactly these interpreters, each required (default: every one found)",
};

pub const INDEX_URL: Flag = Flag {
    name: "--index-url",
    value: Some("URL"),
    help: "the extra index to take pre-releases from",
};

pub const PARTITION: Flag = Flag {
    name: "--partition",
    value: Some("hash:M/N"),
    help: "run one shard of the tests (passed to nextest), so CI can spread them over runners",
};
