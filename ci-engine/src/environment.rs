//! The declared environment: every command xtask starts sees only the variables listed here,
//! never the rest of the outer environment (as Bazel's strict action environment and
//! turborepo's strict mode do).
//!
//! A variable is one of three kinds:
//! - **hashed**: it can change what a stage's commands do (compiler flags, cargo profile
//!   settings, test-suite knobs, interpreter settings, the services' settings): it is passed
//!   to commands and its value is part of every content key and every artifact's recipe;
//! - **passed**: it says where things are or how to show them, never what a result is (HOME,
//!   PATH, temporary and cache directories, terminal and colour settings, the certificates and
//!   proxies the package registries are reached through): passed, not hashed;
//! - anything else is **dropped**: no command sees it, so it cannot change a result.
//!
//! The lists here are what every project has (the compiler, cargo, the interpreters, uv, pip,
//! npm); a project adds its own as [`Rules`] (its test suites' knobs, the stores they talk to,
//! what its services write), declared once by [`declare`] before anything reads the
//! environment.

use std::sync::OnceLock;

/// How the declared environment treats one variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hashed,
    Passed,
    Dropped,
}

/// Variables passed by their exact name (they say where, or how to show it).
const PASSED: &[&str] = &[
    "HOME",
    "PATH",
    "TMPDIR",
    "TMP",
    "TEMP",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "CARGO_TERM_COLOR",
    "CARGO_TERM_PROGRESS_WHEN",
    "CARGO_TERM_VERBOSE",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_INCREMENTAL",
    "XTASK_TOOLS_DIR",
    "XDG_CACHE_HOME",
    "UV_CACHE_DIR",
    "PYENV_ROOT",
    // Where pkg-config looks (actions/setup-python points it at each interpreter it sets up;
    // nothing here builds against a pkg-config library).
    "PKG_CONFIG_PATH",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "UV_NATIVE_TLS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    // Which Docker engine answers (the backend it gives is recorded with a pass).
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    // Where GitHub Actions wants annotations, outputs and the summary written.
    "GITHUB_ENV",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_PATH",
    "RUNNER_TEMP",
    // Windows needs these to start any program.
    "SYSTEMROOT",
    "SystemRoot",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "ProgramData",
    "ProgramFiles",
    "ProgramFiles(x86)",
];

/// Passed by prefix: locale settings and rustup's toolchain choice (the toolchain itself,
/// `rustc -vV`, is in the keys of the stages that compile); cargo's network and registry settings say where crates come from, never which (Cargo.lock
/// does).
const PASSED_PREFIXES: &[&str] = &[
    "RUSTUP_",
    "CARGO_REGISTRIES_",
    "CARGO_REGISTRY_",
    "CARGO_HTTP_",
    "CARGO_NET_",
];

/// Hashed by exact name.
const HASHED: &[&str] = &[
    // Python's default text encoding follows the locale.
    "LANG",
    "CI",
    "GITHUB_ACTIONS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_BOOTSTRAP",
    "LD_PRELOAD",
    "VIRTUAL_ENV",
    "CC",
    "CXX",
    "AR",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "SOURCE_DATE_EPOCH",
    "CONDA_PREFIX",
];

/// Hashed by prefix: everything that configures the compiler, cargo, the interpreters and
/// the installers (a project's [`Rules`] add the rest).
const HASHED_PREFIXES: &[&str] = &[
    "LC_",
    "CARGO_",
    "RUST_",
    "PYTHON",
    "UV_",
    "PIP_",
    "CC_",
    "CXX_",
    "CFLAGS_",
    "CXXFLAGS_",
    "AR_",
    "XTASK_",
    "NODE_",
    "NPM_CONFIG_",
    "npm_config_",
];

/// Set by cargo and rustup for the program they run (xtask itself): they describe xtask's own
/// build (the library path points into its target directory), so they must not reach the
/// commands xtask starts. A library path set by hand is dropped with them: the toolchain,
/// the interpreters and the tools find their libraries without one.
const CARGO_RUN_VARIABLES: &[&str] = &[
    "LD_LIBRARY_PATH",
    "DYLD_LIBRARY_PATH",
    "DYLD_FALLBACK_LIBRARY_PATH",
    "RUST_RECURSION_COUNT",
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
];

/// What a project adds to the engine's lists.
#[derive(Debug)]
pub struct Rules {
    /// Passed by name: what says how the project's own commands run, never what a result is
    /// (how long its servers may take to start).
    pub passed: &'static [&'static str],
    /// Hashed by prefix: what configures the project's tools, its test suites and the servers
    /// they talk to.
    pub hashed_prefixes: &'static [&'static str],
    /// Dropped by prefix, before anything else: what the project's services write to their env
    /// file. Commands that use the services read them from there (their definition is in the
    /// services' inputs), so an outer value must not reach them.
    pub dropped_prefixes: &'static [&'static str],
}

/// The rules of a project that adds nothing.
pub const NO_RULES: Rules = Rules {
    passed: &[],
    hashed_prefixes: &[],
    dropped_prefixes: &[],
};

static RULES: OnceLock<&'static Rules> = OnceLock::new();

/// Declare the project's rules for this process: [`declared`] follows them. An error when
/// other rules were declared, or when the environment was read before.
pub fn declare(rules: &'static Rules) -> anyhow::Result<()> {
    if DECLARED.get().is_some() && RULES.get().is_none() {
        anyhow::bail!("the environment was read before the project declared its rules");
    }
    let declared = RULES.get_or_init(|| rules);
    anyhow::ensure!(
        std::ptr::eq(*declared, rules),
        "the project's environment rules were declared twice, differently"
    );
    Ok(())
}

/// How the declared environment under `rules` treats `name`.
pub fn kind(rules: &Rules, name: &str) -> Kind {
    // Windows spells its variables in any case (`Path`, `windir`, `ComSpec`).
    let upper;
    let name = if cfg!(windows) {
        upper = name.to_ascii_uppercase();
        upper.as_str()
    } else {
        name
    };
    let listed = |list: &[&str]| {
        list.iter().any(|l| {
            if cfg!(windows) {
                l.eq_ignore_ascii_case(name)
            } else {
                *l == name
            }
        })
    };
    if rules.dropped_prefixes.iter().any(|p| name.starts_with(p))
        || listed(CARGO_RUN_VARIABLES)
        || name.starts_with("CARGO_PKG_")
    {
        return Kind::Dropped;
    }
    if listed(PASSED) || listed(rules.passed) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p))
    {
        return Kind::Passed;
    }
    if listed(HASHED)
        || HASHED_PREFIXES
            .iter()
            .chain(rules.hashed_prefixes)
            .any(|p| name.starts_with(p))
    {
        return Kind::Hashed;
    }
    Kind::Dropped
}

/// The declared environment made from `vars`: what commands see, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    pub vars: Vec<(String, String)>,
    /// `NAME=value` lines of the hashed ones.
    hashed: String,
}

/// Set for every command whatever the outer environment says: uv and pip read no
/// configuration file (a `uv.toml` or `pip.conf` in HOME could pin other versions), so only
/// the repository's requirements and the hashed variables decide what they install.
const FIXED: &[(&str, &str)] = &[
    ("UV_NO_CONFIG", "1"),
    (
        "PIP_CONFIG_FILE",
        if cfg!(windows) { "nul" } else { "/dev/null" },
    ),
];

/// The variables a cargo configuration's `[env]` table sets. `cargo run` sets them for xtask
/// too (with `relative = true`, as paths into this checkout), and every cargo a stage starts
/// sets them again from the same declared file: an outer value is dropped, never hashed.
pub fn cargo_env_names(config: &str) -> Vec<String> {
    // A configuration cargo cannot read either sets nothing here.
    let Ok(doc) = config.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    doc.get("env")
        .and_then(|env| env.as_table_like())
        .map(|env| env.iter().map(|(name, _)| name.to_string()).collect())
        .unwrap_or_default()
}

/// The `[env]` names of the cargo configuration in `dir` or its ancestors (where cargo looks).
fn cargo_env_names_from(dir: &std::path::Path) -> Vec<String> {
    dir.ancestors()
        .flat_map(|d| ["config.toml", "config"].map(|n| d.join(".cargo").join(n)))
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| cargo_env_names(&text))
        .collect()
}

impl Declared {
    /// The declared environment of `vars` under `rules`, less the names in `set_by_cargo` (see
    /// [`cargo_env_names`]).
    pub fn from_vars_and_cargo(
        rules: &Rules,
        vars: impl IntoIterator<Item = (String, String)>,
        set_by_cargo: &[String],
    ) -> Declared {
        Declared::from_vars(
            rules,
            vars.into_iter()
                .filter(|(name, _)| !set_by_cargo.contains(name)),
        )
    }

    pub fn from_vars(rules: &Rules, vars: impl IntoIterator<Item = (String, String)>) -> Declared {
        let mut vars: Vec<(String, String)> = FIXED
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(
                vars.into_iter()
                    .filter(|(name, _)| kind(rules, name) != Kind::Dropped)
                    .filter(|(name, _)| !FIXED.iter().any(|(f, _)| f == name)),
            )
            .collect();
        vars.sort();
        vars.dedup_by(|a, b| a.0 == b.0);
        let hashed = vars
            .iter()
            .filter(|(name, _)| kind(rules, name) == Kind::Hashed)
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect();
        Declared { vars, hashed }
    }

    /// `NAME=value` lines of the hashed variables: what keys and recipes include.
    pub fn hashed(&self) -> String {
        self.hashed.clone()
    }
}

/// What changes a result besides the tree and the pins, as text for keys and manifests: the
/// hashed variables, and cargo's configuration files outside the workspace (in `$CARGO_HOME`
/// and the workspace's parent directories: their `rustflags`, profiles and `[env]` apply to
/// every build here, and the workspace's own `.cargo/` is a declared input).
pub fn settings(root: &std::path::Path) -> String {
    let mut text = declared().hashed();
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    // Named by where they are relative to the workspace, never by path: two checkouts of one
    // tree at different places have the same keys.
    let mut dirs: Vec<(String, std::path::PathBuf)> = root
        .ancestors()
        .skip(1)
        .enumerate()
        .map(|(up, d)| (format!("{}.cargo", "../".repeat(up + 1)), d.join(".cargo")))
        .collect();
    dirs.extend(home.map(|h| ("$CARGO_HOME".to_string(), h)));
    for (label, dir) in dirs {
        for name in ["config.toml", "config"] {
            if let Ok(contents) = std::fs::read_to_string(dir.join(name)) {
                text.push_str(&format!("# {label}/{name}\n{contents}\n"));
            }
        }
    }
    text
}

static DECLARED: OnceLock<Declared> = OnceLock::new();

/// The declared environment of this process (read once), under the rules [`declare`]d before.
pub fn declared() -> &'static Declared {
    DECLARED.get_or_init(|| {
        let set_by_cargo = std::env::current_dir()
            .map(|dir| cargo_env_names_from(&dir))
            .unwrap_or_default();
        Declared::from_vars_and_cargo(
            RULES.get().copied().unwrap_or(&NO_RULES),
            std::env::vars_os().filter_map(|(name, value)| {
                Some((name.into_string().ok()?, value.into_string().ok()?))
            }),
            &set_by_cargo,
        )
    })
}

// The fixed variables are asserted with Unix paths.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A project's additions, as a project declares them.
    const EXAMPLE: Rules = Rules {
        passed: &["EXAMPLE_TIMEOUT"],
        hashed_prefixes: &["EXAMPLE_"],
        dropped_prefixes: &["EXAMPLE_SERVICE_"],
    };

    fn kind(name: &str) -> Kind {
        super::kind(&EXAMPLE, name)
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn what_changes_results_is_hashed_where_things_are_is_passed_the_rest_dropped() {
        for name in [
            "RUSTFLAGS",
            "CARGO_PROFILE_CI_OPT_LEVEL",
            "EXAMPLE_SEED",
            "PYTHONPATH",
            "UV_PRERELEASE",
            "CI",
            "XTASK_SERVICES_BACKEND",
            "LANG",
            "LC_ALL",
            "PIP_FIND_LINKS",
            "UV_INDEX_URL",
        ] {
            assert_eq!(kind(name), Kind::Hashed, "{name}");
        }
        for name in [
            "HOME",
            "PATH",
            "TMPDIR",
            "TERM",
            "NO_COLOR",
            "CARGO_TERM_COLOR",
            "CARGO_HOME",
            "UV_CACHE_DIR",
            "XTASK_TOOLS_DIR",
            "SSL_CERT_FILE",
            "RUSTUP_TOOLCHAIN",
            "DOCKER_HOST",
            "EXAMPLE_TIMEOUT",
        ] {
            assert_eq!(kind(name), Kind::Passed, "{name}");
        }
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO",
            "EXAMPLE_SERVICE_ENDPOINT",
            "OLDPWD",
            "PYTEST_ADDOPTS",
            "SOMETHING_ELSE",
        ] {
            assert_eq!(kind(name), Kind::Dropped, "{name}");
        }
    }

    #[test]
    fn what_cargo_sets_from_the_workspace_config_is_dropped() {
        let config = "[alias]\nxtask = \"run\"\n\n[env]\n# a comment\nPYO3_CONFIG_FILE = { \
                      value = \"x\", relative = true }\nPYO3_BUILD_EXTENSION_MODULE = \"1\"\n";
        let names = cargo_env_names(config);
        assert_eq!(names, ["PYO3_CONFIG_FILE", "PYO3_BUILD_EXTENSION_MODULE"]);
        // Dotted keys and an inline table name the same variables; a file cargo cannot read
        // sets none.
        assert_eq!(
            cargo_env_names("env.ONE = \"1\"\nenv = { TWO = \"2\" }\n"),
            Vec::<String>::new(),
            "a key defined twice is not TOML"
        );
        assert_eq!(
            cargo_env_names("env.ONE = \"1\"\nenv.TWO = { value = \"2\", force = true }\n"),
            ["ONE", "TWO"]
        );
        assert_eq!(
            cargo_env_names("[other]\nenv = { THREE = \"3\" }\n"),
            Vec::<String>::new()
        );
        assert_eq!(cargo_env_names("[env\nbroken"), Vec::<String>::new());
        let declared = Declared::from_vars_and_cargo(
            &EXAMPLE,
            vars(&[("PYO3_CONFIG_FILE", "/checkout/a/x"), ("PYTHONPATH", "/p")]),
            &names,
        );
        assert!(!declared.hashed().contains("PYO3_CONFIG_FILE"));
        assert!(declared.hashed().contains("PYTHONPATH=/p"));
    }

    #[test]
    fn only_hashed_variables_reach_the_hash_and_dropped_ones_reach_nothing() {
        let declared = Declared::from_vars(
            &EXAMPLE,
            vars(&[
                ("PYTHONPATH", "/shadow"),
                ("HOME", "/elsewhere/a"),
                ("OLDPWD", "/x"),
                ("RUSTFLAGS", "-Cdebuginfo=0"),
            ]),
        );
        assert_eq!(
            declared.vars,
            vars(&[
                ("HOME", "/elsewhere/a"),
                ("PIP_CONFIG_FILE", "/dev/null"),
                ("PYTHONPATH", "/shadow"),
                ("RUSTFLAGS", "-Cdebuginfo=0"),
                ("UV_NO_CONFIG", "1"),
            ])
        );
        assert_eq!(
            declared.hashed(),
            "PIP_CONFIG_FILE=/dev/null\nPYTHONPATH=/shadow\nRUSTFLAGS=-Cdebuginfo=0\nUV_NO_CONFIG=1\n"
        );
        let other_home = Declared::from_vars(
            &EXAMPLE,
            vars(&[
                ("PYTHONPATH", "/shadow"),
                ("HOME", "/elsewhere/b"),
                ("RUSTFLAGS", "-Cdebuginfo=0"),
            ]),
        );
        assert_eq!(declared.hashed(), other_home.hashed());
    }
}
