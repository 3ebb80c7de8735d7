//! This repository's stage flags, each declared once with its value's placeholder, help and
//! check (`ci_engine::flags` parses them).

use anyhow::{Result, bail};
use ci_engine::flags::Flag;

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

/// The versions of a `--python` list, each once, comma-separated.
fn check_pythons(value: String) -> Result<String> {
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
    Ok(versions.join(","))
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
    check: Some(check_backend),
};

pub const SERVICES_FULL: Flag = Flag {
    name: "--full",
    value: None,
    help: "also run the tests that need the S3 and Azure services",
    check: None,
};

pub const PYTHON: Flag = Flag {
    name: "--python",
    value: Some("X.Y[,X.Y...]"),
    help: "test exactly these interpreters, each required (default: every one found)",
    check: Some(check_pythons),
};

pub const INDEX_URL: Flag = Flag {
    name: "--index-url",
    value: Some("URL"),
    help: "the extra index to take pre-releases from",
    check: None,
};

pub const PARTITION: Flag = Flag {
    name: "--partition",
    value: Some("hash:M/N"),
    help: "run one shard of the tests (passed to nextest), so CI can spread them over runners",
    check: Some(check_partition),
};
