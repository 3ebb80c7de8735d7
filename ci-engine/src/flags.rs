//! A stage's flags, each declared once with its value's placeholder, help and check: the
//! stages' command lines, `ci`, the generated workflows and `--help` all take them from here,
//! and one parser (lexopt) reads them.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use lexopt::prelude::*;

/// A flag a stage accepts.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    /// The value's placeholder, or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
    /// Checks a value and returns it in its one spelling (a switch has none).
    pub check: Option<fn(String) -> Result<String>>,
}

/// The values a stage's flags were given, by flag name: `Some` for a value, `None` for a
/// switch. A list is one value, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageArgs {
    given: BTreeMap<&'static str, Option<String>>,
}

impl StageArgs {
    /// Parse `args` against the `flags` the stage `stage` accepts.
    pub fn parse(stage: &str, flags: &'static [Flag], args: &[String]) -> Result<StageArgs> {
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
                    describe(flags)
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
                    Ok(v) => {
                        let text = v
                            .into_string()
                            .map_err(|_| anyhow!("`{}` takes plain text", flag.name))?;
                        Some(match flag.check {
                            Some(check) => check(text)?,
                            None => text,
                        })
                    }
                    Err(_) => bail!("`{}` needs a value: {} {placeholder}", flag.name, flag.name),
                },
            };
            parsed.given.insert(flag.name, value);
        }
        Ok(parsed)
    }

    /// The value `flag` was given.
    pub fn value(&self, flag: &Flag) -> Option<&str> {
        self.given.get(flag.name)?.as_deref()
    }

    /// Whether `flag` was given.
    pub fn has(&self, flag: &Flag) -> bool {
        self.given.contains_key(flag.name)
    }

    /// The items of `flag`'s comma-separated value (none when it was not given).
    pub fn list(&self, flag: &Flag) -> Vec<String> {
        self.value(flag)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// These values with `flag` given `value` (`None` for a switch), replacing any it had.
    pub fn with(mut self, flag: &Flag, value: Option<String>) -> StageArgs {
        self.given.insert(flag.name, value);
        self
    }

    /// The arguments that reproduce these values, in the order of the flags' names.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (name, value) in &self.given {
            args.push(name.to_string());
            args.extend(value.clone());
        }
        args
    }
}

fn describe(flags: &[Flag]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn even(value: String) -> Result<String> {
        match value.parse::<u32>() {
            Ok(n) if n % 2 == 0 => Ok(n.to_string()),
            _ => bail!("invalid count `{value}`: expected an even number"),
        }
    }

    const COUNT: Flag = Flag {
        name: "--count",
        value: Some("N"),
        help: "an even count",
        check: Some(even),
    };
    const LOUD: Flag = Flag {
        name: "--loud",
        value: None,
        help: "a switch",
        check: None,
    };
    static FLAGS: &[Flag] = &[COUNT, LOUD];

    fn parse(args: &[&str]) -> Result<StageArgs> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        StageArgs::parse("demo", FLAGS, &args)
    }

    #[test]
    fn values_are_checked_and_spelled_one_way() {
        let args = parse(&["--loud", "--count=04"]).unwrap();
        assert_eq!(args.value(&COUNT), Some("4"));
        assert!(args.has(&LOUD));
        assert_eq!(args.to_args(), ["--count", "4", "--loud"]);
        assert_eq!(
            parse(
                &args
                    .to_args()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            )
            .unwrap(),
            args
        );
        let err = parse(&["--count", "3"]).unwrap_err().to_string();
        assert!(err.contains("expected an even number"), "{err}");
    }

    #[test]
    fn unknown_or_malformed_arguments_say_what_is_accepted() {
        let err = parse(&["--full"]).unwrap_err().to_string();
        assert!(
            err.contains("for stage `demo`") && err.contains("--count N, --loud"),
            "{err}"
        );
        let err = parse(&["--count"]).unwrap_err().to_string();
        assert!(err.contains("needs a value: --count N"), "{err}");
        let err = parse(&["--loud=yes"]).unwrap_err().to_string();
        assert!(err.contains("takes no value"), "{err}");
    }

    #[test]
    fn a_list_is_its_comma_separated_items() {
        let args = StageArgs::default().with(&COUNT, Some("2,4".into()));
        assert_eq!(args.list(&COUNT), ["2", "4"]);
        assert!(StageArgs::default().list(&COUNT).is_empty());
    }
}
