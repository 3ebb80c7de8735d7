//! The command line of the job model's small layout, with one command of its own.

use super::*;
use crate::jobs::tests::LAYOUT;

#[derive(Debug)]
struct Hello {
    dry_run: bool,
}

impl Parsed for Hello {
    fn only_prints(&self) -> bool {
        self.dry_run
    }

    fn run(&self, _: &Context, _: &Output) -> Result<bool> {
        Ok(true)
    }
}

static CLI: Cli = Cli {
    layout: &LAYOUT,
    usage: "cargo xtask: the example's commands",
    commands: &[ProjectCommand {
        name: "hello",
        parse: |args, dry_run| match args.first() {
            Some(arg) => bail!("`hello` takes no `{arg}`"),
            None => Ok(Box::new(Hello { dry_run })),
        },
    }],
};

fn parse_str(line: &str) -> Result<Command> {
    parse(&CLI, line.split_whitespace().map(str::to_string).collect())
}

#[test]
fn ci_flags_select_stages_and_the_scheduled_pipeline_is_audited() {
    let Command::Ci {
        selection,
        keep_going,
        force,
        audit,
        dry_run,
    } = parse_str("ci --only lint,test --skip build --keep-going --dry-run --scheduled --force")
        .unwrap()
    else {
        panic!("not ci");
    };
    assert_eq!(selection.only, Some(vec!["lint".into(), "test".into()]));
    assert_eq!(selection.skip, ["build"]);
    assert!(keep_going && dry_run && selection.scheduled && force && audit);
    assert!(matches!(
        parse_str("audit --only lint").unwrap(),
        Command::Ci {
            audit: true,
            force: true,
            ..
        }
    ));
    assert!(matches!(
        parse_str("ci --audit").unwrap(),
        Command::Ci {
            audit: true,
            force: false,
            ..
        }
    ));
}

#[test]
fn unknown_things_answer_with_the_valid_ones() {
    let err = parse_str("ci --fast").unwrap_err().to_string();
    assert!(err.contains("--keep-going"), "{err}");
    let err = parse_str("lint-everything").unwrap_err().to_string();
    assert!(err.contains("lint"), "{err}");
    // No servers: no command to stop them.
    assert!(
        err.contains("other commands: ci, workflows, hello, list"),
        "{err}"
    );
    let err = parse_str("list --verbose").unwrap_err().to_string();
    assert!(err.contains("takes no argument `--verbose`"), "{err}");
    let err = parse_str("hello there").unwrap_err().to_string();
    assert!(err.contains("`hello` takes no `there`"), "{err}");
}

#[test]
fn stages_project_commands_and_help() {
    let Command::Stage {
        name,
        args,
        dry_run,
    } = parse_str("test --python 3.8 --dry-run").unwrap()
    else {
        panic!("not a stage");
    };
    assert_eq!(name, "test");
    assert_eq!(args.to_args(), ["--python", "3.8"]);
    assert!(dry_run);
    let hello = parse_str("hello --dry-run").unwrap();
    assert!(hello.only_prints(), "{hello:?}");
    assert!(!parse_str("hello").unwrap().only_prints());
    for line in ["", "--help", "ci --help", "help hello"] {
        let Command::Help(text) = parse_str(line).unwrap() else {
            panic!("{line}: not help");
        };
        assert_eq!(text, CLI.usage, "{line}");
    }
    let Command::Help(text) = parse_str("test --help").unwrap() else {
        panic!("not help");
    };
    assert!(text.contains("--python"), "{text}");
}
