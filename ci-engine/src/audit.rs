//! The audit: proof by observation that content keys miss nothing. Under an audited run, every
//! command of a stage whose result can be reused (a cacheable stage, or a build whose manifest
//! can say "current") runs under a file-access tracer (strace on Linux). Each file a traced
//! process opened for reading, or executed, inside the repository or the tools directory must
//! be covered by what the stage declares — its key's paths, the artifacts it consumes, the
//! servers it requires, its tools — or have been written earlier by the stage itself, or be a
//! read listed in [`EXPLAINED`] or the pipeline's own list with the reason it cannot change a
//! result. Anything else is an undeclared read, and the audit fails naming it. It also lists
//! the declared inputs no traced process read.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::exec::Executor;
use crate::graph::{Pipeline, Services, Stage};
use crate::keys::covers_path;
use crate::output::{Output, Tone};
use crate::process;
use crate::report::{StageReport, Status};
use crate::strace::{Accesses, parse, tracer};

/// Reads that are not inputs in every project, each with why it cannot change a result
/// (pathspecs relative to the workspace root); a pipeline adds its own
/// ([`Pipeline::explained`]: where its builds and its xtask's live, for one).
pub const EXPLAINED: &[(&str, &str)] = &[(
    ".git",
    "git's own files, read by git to list the tree; what they list is hashed file by file",
)];

/// The engine's explained reads and `pipeline`'s.
fn explained(pipeline: &Pipeline) -> impl Iterator<Item = &(&'static str, &'static str)> {
    EXPLAINED.iter().chain(pipeline.explained)
}

/// What the audit found for one stage.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Finding {
    pub stage: String,
    /// Files it read that nothing it declares covers.
    pub undeclared: Vec<String>,
    /// Reads listed as explained.
    pub explained: usize,
    /// Files read in all (inside the repository and the tools).
    pub read: usize,
    /// Declared paths (files or directories) nothing traced read.
    pub unread: Vec<String>,
}

/// Check what `stage` of `pipeline` read against what it declares: `covered` are its key's
/// paths.
pub fn check(
    ctx: &Context,
    pipeline: &Pipeline,
    stage: &Stage,
    covered: &[String],
    accesses: &Accesses,
) -> Finding {
    let rel = |p: PathBuf| ctx.rel(&p).to_string_lossy().replace('\\', "/");
    let mut declared: Vec<String> = covered.to_vec();
    for artifact in stage.consumes.iter().chain(stage.produces) {
        declared.push(rel(crate::artifacts::dir(ctx, artifact)));
    }
    if let (Services::Requires, Some(servers)) = (stage.services, &pipeline.servers) {
        declared.push(rel((servers.env_file)(ctx)));
    }
    // A tool's directory is what its pin installs: covered when the pin is, by the stage's
    // tools or by a key that covers the pins themselves (a project's own tests may use every
    // tool).
    let pins_covered = !pipeline.pin_files.is_empty()
        && pipeline
            .pin_files
            .iter()
            .all(|pin| covered.iter().any(|c| covers_path(c, pin)));
    // Named as the traces name them: under `<tools>`, the tools directory of keys' context.
    let own = stage.pinned_tools();
    let for_keys = ctx.for_keys();
    let tools: Vec<String> = pipeline
        .tools()
        .iter()
        .filter(|t| pins_covered || own.contains(t))
        .map(|t| {
            t.install_dir(&for_keys)
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let mut finding = Finding {
        stage: stage.name.to_string(),
        read: accesses.read.len(),
        ..Finding::default()
    };
    for file in &accesses.read {
        if declared.iter().chain(&tools).any(|d| covers_path(d, file)) {
            continue;
        }
        // A directory opened by path (O_PATH) lists nothing: new files in it are keyed.
        if !file.starts_with("<tools>/") && ctx.root.join(file).is_dir() {
            continue;
        }
        if explained(pipeline).any(|(spec, _)| covers_path(spec, file)) {
            finding.explained += 1;
            continue;
        }
        finding.undeclared.push(file.clone());
    }
    finding.unread = covered
        .iter()
        .filter(|spec| *spec != ".")
        .filter(|spec| !accesses.read.iter().any(|f| covers_path(spec, f)))
        .cloned()
        .collect();
    finding
}

/// Read every trace log in `dir` (one per traced command).
pub fn read_traces(dir: &Path, root: &Path, tools: &Path) -> Result<Accesses> {
    let mut all = Accesses::default();
    // strace resolves paths through links: compare with the real root and tools directory.
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let tools = std::fs::canonicalize(tools).unwrap_or_else(|_| tools.to_path_buf());
    let mut logs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("no traces in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .map(|p| {
            let n = p
                .file_stem()
                .and_then(|s| s.to_str()?.parse().ok())
                .unwrap_or(u64::MAX);
            (n, p)
        })
        .collect();
    // In the order the commands ran (concurrent ones in the order they were started).
    logs.sort();
    let logs = logs.into_iter().map(|(_, p)| p);
    for log in logs {
        let text =
            std::fs::read(&log).with_context(|| format!("could not read {}", log.display()))?;
        let one = parse(&String::from_utf8_lossy(&text), &root, &tools);
        // A command's reads of what an earlier command of the stage wrote are not inputs.
        for file in one.read {
            if !all.written.contains(&file) {
                all.read.insert(file);
            }
        }
        all.written.extend(one.written);
    }
    Ok(all)
}

/// Whether the audit traces `stage`: its result can be reused (a pass record, or a build's
/// manifest that says "current").
pub fn audited(stage: &Stage) -> bool {
    stage.inputs.cacheable || stage.builds()
}

/// The tracer, installed with the system's package manager when it is missing (and said so).
fn ensure_tracer(root: &Path, out: &Output) -> Result<()> {
    let works = || process::capture(&Cmd::new("strace").arg("-V"), root).is_ok();
    if works() {
        return Ok(());
    }
    out.say(
        Tone::Bold,
        "strace (the audit's file-access tracer) is missing: installing it with apt-get",
    );
    let apt = |args: &[&str]| {
        let cmd = if is_root() {
            Cmd::new("apt-get").args(args)
        } else {
            Cmd::new("sudo").args(["-n", "apt-get"]).args(args)
        };
        process::capture(&cmd.env("DEBIAN_FRONTEND", "noninteractive"), root)
    };
    let install = ["install", "-y", "--no-install-recommends", "strace"];
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    if !works() {
        bail!("strace was installed but does not run");
    }
    Ok(())
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// One run's audit: which stages it traced and what each read.
pub struct Run {
    pipeline: &'static Pipeline,
    /// Why nothing can be traced here, when that is so.
    unavailable: Option<String>,
    /// No tracer exists on this platform at all (not a failure: the Linux run audits).
    other_platform: bool,
    findings: Vec<Finding>,
    /// Stages audited but not traced, with why.
    untraced: Vec<String>,
    /// Time spent reading and checking the traces.
    seconds: f64,
}

impl Run {
    pub fn start(ctx: &Context, pipeline: &'static Pipeline, out: &Output, dry_run: bool) -> Run {
        let unavailable = if !cfg!(target_os = "linux") {
            Some("no file-access tracer on this platform: the scheduled Linux run audits".into())
        } else if dry_run {
            None
        } else {
            ensure_tracer(&ctx.root, out)
                .err()
                .map(|e| format!("the tracer could not be installed: {e:#}"))
        };
        Run {
            pipeline,
            unavailable,
            other_platform: !cfg!(target_os = "linux"),
            findings: Vec::new(),
            untraced: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Before `stage` runs: trace its commands into a fresh directory, which is returned.
    pub fn begin(&mut self, exec: &mut Executor<'_>, stage: &Stage) -> Option<PathBuf> {
        if self.unavailable.is_some() || !audited(stage) {
            return None;
        }
        let dir = exec.ctx.xtask_dir().join("audit").join(stage.name);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.untraced.push(format!(
                "{}: could not create {}: {e}",
                stage.name,
                dir.display()
            ));
            return None;
        }
        let logs = dir.clone();
        let mut count = 0;
        exec.rewrite = Some(Box::new(move |cmd: &Cmd| {
            count += 1;
            tracer(cmd, &logs.join(format!("{count:03}.trace")))
        }));
        Some(dir)
    }

    /// After `stage` ran with its traces in `dir`: check what it read against `covered`, its
    /// key's paths.
    pub fn end(
        &mut self,
        ctx: &Context,
        stage: &Stage,
        dir: &Path,
        covered: Option<Vec<String>>,
        passed: bool,
    ) {
        let started = Instant::now();
        let name = stage.name;
        let checked = match (passed, covered) {
            (false, _) => Err("it failed, so what it read proves nothing".to_string()),
            (true, None) => Err("its key could not be computed".to_string()),
            (true, Some(covered)) => read_traces(dir, &ctx.root, &ctx.tools_dir)
                .map_err(|e| format!("{e:#}"))
                .and_then(|accesses| {
                    if accesses.read.is_empty() && accesses.written.is_empty() {
                        Err("it ran no command (its artifact was current)".to_string())
                    } else {
                        Ok(check(ctx, self.pipeline, stage, &covered, &accesses))
                    }
                }),
        };
        match checked {
            Ok(finding) => self.findings.push(finding),
            Err(why) => self.untraced.push(format!("{name}: not traced: {why}")),
        }
        self.seconds += started.elapsed().as_secs_f64();
    }

    /// The audit's row of the report (also written to `target/xtask/audit.json`); none on a
    /// platform without a tracer, where it only says so.
    pub fn finish(self, ctx: &Context, out: &Output, dry_run: bool) -> Option<StageReport> {
        if self.other_platform {
            out.say(
                Tone::Dim,
                &format!("# audit: {}", self.unavailable.unwrap_or_default()),
            );
            return None;
        }
        let mut report = StageReport::new("audit", "audit (traced stages)".to_string());
        report.seconds = self.seconds;
        if dry_run {
            println!(
                "==> audit: every command of a stage whose result can be reused runs under \
                 strace; each file it reads must be covered by the stage's key"
            );
            return Some(report);
        }
        if let Some(why) = self.unavailable {
            report.status = Status::Failed;
            out.stage_failed("audit", &why);
            report.notes.push(why);
            return Some(report);
        }
        let undeclared: usize = self.findings.iter().map(|f| f.undeclared.len()).sum();
        for finding in &self.findings {
            let line = format!(
                "{}: {} files read, {} explained, {} undeclared{}",
                finding.stage,
                finding.read,
                finding.explained,
                finding.undeclared.len(),
                if finding.unread.is_empty() {
                    String::new()
                } else {
                    format!("; declared but not read: {}", finding.unread.join(", "))
                }
            );
            out.say(Tone::Dim, &format!("# audit: {line}"));
            report.notes.push(line);
            for file in &finding.undeclared {
                let line = format!(
                    "{}: undeclared read: {file} (declare it in the stage's inputs, or keep it \
                     out of the stage's reach)",
                    finding.stage
                );
                out.say(Tone::Bad, &line);
                report.notes.push(line);
            }
        }
        for line in &self.untraced {
            out.say(Tone::Dim, &format!("# audit: {line}"));
            report.notes.push(line.clone());
        }
        if undeclared > 0 {
            report.status = Status::Failed;
            out.stage_failed(
                "audit",
                &format!(
                    "{undeclared} undeclared reads: a skip of those stages could be a false green"
                ),
            );
        }
        let json = serde_json::json!({
            "traced": self.findings,
            "untraced": self.untraced,
            "explained": explained(self.pipeline).map(|(p, why)| serde_json::json!({"path": p, "why": why})).collect::<Vec<_>>(),
            "seconds": self.seconds,
        });
        let path = ctx.audit_path();
        if let Err(e) = std::fs::write(&path, format!("{json:#}\n")) {
            out.warn(&format!("could not write {}: {e}", path.display()));
        }
        Some(report)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::graph::{Artifact, Inputs, Kept};
    use crate::plan::Plan;
    use crate::tools::{Installer, Tool};

    static WHEEL: Artifact = Artifact {
        name: "wheel",
        producer: "build",
        dir: "wheels",
        sources: &["pkg"],
        copies: None,
        build: |_, _| Vec::new(),
        tools: &[],
        prepare: Plan::new,
        python: true,
        compressed: false,
    };

    const MATURIN: Tool = Tool {
        name: "maturin",
        version: "1.0.0",
        installer: Installer::Uv("maturin"),
        exe: "bin/maturin",
        on_path: None,
        cargo_subcommand: None,
    };

    const fn stage(name: &'static str) -> Stage {
        let inputs = Inputs {
            packages: &[],
            paths: &[],
            toolchain: false,
            cacheable: true,
        };
        Stage::new(name, "", inputs, |_, _, _| Ok(Plan::new()))
    }

    /// A build of a wheel with maturin, and a lint of it.
    static PIPELINE: Pipeline = Pipeline {
        stages: &[
            Stage {
                produces: &[&WHEEL],
                tools: &[MATURIN],
                ..stage("build")
            },
            Stage {
                consumes: &[&WHEEL],
                tools: &[crate::tools::UV],
                keeps: &[Kept {
                    name: "examples",
                    path: "pkg/.examples/",
                }],
                ..stage("lint")
            },
        ],
        unclaimed: &[],
        explained: &[(
            "pkg/.examples",
            "failed examples, replayed: they can only fail a run",
        )],
        pin_files: &["pins.rs"],
        servers: None,
    };

    const LOG: &str = r#"100 execve("/elsewhere/bin/python3", ["python3"], 0x7ffd /* 3 vars */) = 0
100 openat(AT_FDCWD</repo>, "pkg/tests/test_a.py", O_RDONLY|O_CLOEXEC) = 3</repo/pkg/tests/test_a.py>
100 openat(AT_FDCWD</repo>, "target/xtask/venvs/x/pyvenv.cfg", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 4</repo/target/xtask/venvs/x/pyvenv.cfg>
100 openat(AT_FDCWD</repo>, "target/xtask/venvs/x/pyvenv.cfg", O_RDONLY) = 4</repo/target/xtask/venvs/x/pyvenv.cfg>
101 openat(AT_FDCWD</repo/pkg>, "../README.md", O_RDONLY <unfinished ...>
100 openat(AT_FDCWD</repo>, "pkg/tests", O_RDONLY|O_DIRECTORY) = 5</repo/pkg/tests>
101 <... openat resumed>) = 6</repo/README.md>
100 linkat(AT_FDCWD</elsewhere/u/.cache/uv>, "wheels/a.py", AT_FDCWD</repo>, "target/xtask/venvs/x/a.py", 0) = 0
100 openat(AT_FDCWD</repo>, "target/xtask/venvs/x/a.py", O_RDONLY) = 7</repo/target/xtask/venvs/x/a.py>
100 openat(AT_FDCWD</tools>, "uv-0.13.9/bin/uv", O_RDONLY) = 8</tools/uv-0.13.9/bin/uv>
100 openat(AT_FDCWD</repo>, "/elsewhere/hosts", O_RDONLY) = 9</elsewhere/hosts>
100 newfstatat(AT_FDCWD</repo>, "compose.yaml", {st_mode=S_IFREG|0644, st_size=1, ...}, 0) = 0
"#;

    #[test]
    fn reads_are_told_from_writes_and_named_relative_to_the_root_or_the_tools() {
        let accesses = parse(LOG, Path::new("/repo"), Path::new("/tools"));
        let read: Vec<&str> = accesses.read.iter().map(String::as_str).collect();
        assert_eq!(
            read,
            [
                "<tools>/uv-0.13.9/bin/uv",
                "README.md",
                "pkg/tests/test_a.py"
            ]
        );
        assert!(accesses.written.contains("target/xtask/venvs/x/pyvenv.cfg"));
        assert!(accesses.written.contains("target/xtask/venvs/x/a.py"));
    }

    #[test]
    fn escaped_names_and_renames_are_read_as_strace_writes_them() {
        let log = "1 openat(AT_FDCWD</repo>, \"\\303\\251t\\303\\251.txt\", O_RDONLY) = 3\n\
                   1 openat(AT_FDCWD</repo>, \"log.txt\", O_WRONLY|O_APPEND) = 4</repo/log.txt>\n\
                   1 renameat2(AT_FDCWD</repo>, \"a.tmp\", AT_FDCWD</repo>, \"a.txt\", 0) = 0\n";
        let accesses = parse(log, Path::new("/repo"), Path::new("/tools"));
        let read: Vec<&str> = accesses.read.iter().map(String::as_str).collect();
        assert_eq!(read, ["a.tmp", "été.txt"]);
        let written: Vec<&str> = accesses.written.iter().map(String::as_str).collect();
        assert_eq!(written, ["a.txt"], "appending makes nothing anew");
    }

    #[test]
    fn undeclared_reads_are_named_and_explained_ones_counted() {
        let ctx = crate::context::testing::context_at("/repo".into());
        let stage = PIPELINE.stage("lint").unwrap();
        let mut accesses = Accesses::default();
        for f in [
            "pkg/python/pkg/__init__.py",
            "pkg/.examples/x",
            "target/xtask/artifacts/wheels/pkg.whl",
            "<tools>/uv-0.13.9/bin/uv",
            "<tools>/maturin-1.0.0/bin/maturin",
            "Cargo.toml",
        ] {
            accesses.read.insert(f.to_string());
        }
        let covered = vec!["pkg/python".to_string(), "pkg/tests".to_string()];
        let finding = check(&ctx, &PIPELINE, stage, &covered, &accesses);
        assert_eq!(
            finding.undeclared,
            ["<tools>/maturin-1.0.0/bin/maturin", "Cargo.toml"]
        );
        assert_eq!(finding.explained, 1);
        assert_eq!(finding.unread, ["pkg/tests"]);
    }

    /// Whether this process is itself being traced (ptrace allows one tracer).
    #[cfg(target_os = "linux")]
    fn traced() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("TracerPid:"))
                    .map(|pid| pid.trim() != "0")
            })
            .unwrap_or(false)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_trace_sees_a_file_read_by_a_child() {
        if traced() {
            // Under the audit this test is traced already, and a process has one tracer: the
            // audit itself is then parsing real traces of this very run.
            eprintln!("traced by the audit: strace cannot trace a child of a traced process");
            return;
        }
        ensure_tracer(Path::new("."), &Output::plain()).expect("the audit's tracer can be had");
        let dir = std::env::temp_dir().join(format!("xtask-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("traces")).unwrap();
        std::fs::write(dir.join("input.txt"), "hello\n").unwrap();
        let cmd = Cmd::new("sh").args(["-c", "cat input.txt > output.txt; cat output.txt"]);
        let log = dir.join("traces/1.trace");
        process::capture(&tracer(&cmd, &log), &dir).unwrap();
        let accesses = read_traces(&dir.join("traces"), &dir, Path::new("/nowhere")).unwrap();
        assert!(accesses.read.contains("input.txt"), "{accesses:?}");
        assert!(!accesses.read.contains("output.txt"), "{accesses:?}");
        assert!(accesses.written.contains("output.txt"), "{accesses:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
