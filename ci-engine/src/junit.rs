//! Failed tests from JUnit XML reports, as cargo-nextest 0.9 and pytest's `--junitxml` write
//! them, rendered as GitHub `::error` workflow commands and as a `$GITHUB_STEP_SUMMARY` section.
//!
//! The XML is read with quick-xml into a small tree: elements, attributes, text, CDATA, the five
//! predefined entities and character references; comments, the XML declaration and processing
//! instructions are skipped. Anything else (a DOCTYPE, an unknown entity, an unclosed tag) is
//! an error, and so is a tree nested deeper than `MAX_DEPTH`.

use std::fmt;
use std::path::PathBuf;

use crate::cmd::Cmd;
use crate::plan::{Action, Outcome, Runner};
use anyhow::{Context, Result, anyhow, bail, ensure};

/// Bytes of a test's detail in the summary; a captured output's tail gets half of it.
const DETAIL_LIMIT: usize = 4096;
/// Bytes of an annotation's message, and of its title or a table cell.
const MESSAGE_LIMIT: usize = 1024;
const CELL_LIMIT: usize = 200;
/// Tests whose detail the summary shows, and its size before the closing lines (the table
/// gets half).
const MAX_DETAILS: usize = 50;
const SUMMARY_BUDGET: usize = 512 * 1024;
/// Element nesting a report may have (the failures are collected recursively).
const MAX_DEPTH: usize = 64;

/// One failed or errored testcase. `line` is 1-based. `file` is relative to where the tool
/// ran: for nextest, the location of the test's panic (none when it is outside the workspace);
/// for pytest, the `file` attribute, relative to pytest's rootdir.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    pub suite: String,
    pub name: String,
    pub classname: String,
    pub message: String,
    pub detail: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The failed and errored testcases of a JUnit report, in report order. Skipped tests, and
/// flaky tests that passed on a retry (only `<flakyFailure>` children), are not failures; the
/// `<rerunFailure>`s of a test that failed every try are ignored in favour of its `<failure>`.
pub fn failures(xml: &str) -> Result<Vec<Failure>> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let document = document(xml)?;
    let mut found = Vec::new();
    collect(&document, "", &mut found);
    Ok(found)
}

/// The failures among the testcases under `parent`, `suite` being their `<testsuite>`'s name.
fn collect(parent: &Element, suite: &str, found: &mut Vec<Failure>) {
    for child in &parent.children {
        match child.name.as_str() {
            "testsuites" => collect(child, suite, found),
            "testsuite" => collect(child, &child.attr("name"), found),
            "testcase" => found.extend(failure(child, suite)),
            _ => {}
        }
    }
}

fn failure(case: &Element, suite: &str) -> Option<Failure> {
    let failed = case.named(&["failure", "error"]);
    let first = failed.first()?;
    let message = Some(first.attr("message")).filter(|m| !m.is_empty());
    let message = message.unwrap_or_else(|| first.attr("type"));
    let texts: Vec<&str> = failed.iter().map(|f| f.text.trim_end()).collect();
    let mut detail = texts.join("\n\n").trim().to_string();
    if detail.is_empty() {
        // No text (a crash, a timeout): the ends of stderr and stdout.
        let outputs = case.named(&["system-err"]).into_iter();
        let outputs = outputs.chain(case.named(&["system-out"]));
        let tails = outputs
            .filter(|o| !o.text.trim().is_empty())
            .map(|o| format!("--- {} ---\n{}", o.name, tail(&o.text)));
        detail = tails.collect::<Vec<_>>().join("\n");
    }
    let mut failure = Failure {
        suite: suite.to_string(),
        name: case.attr("name"),
        classname: case.attr("classname"),
        file: Some(case.attr("file")).filter(|f| !f.is_empty()),
        ..Failure::default()
    };
    if failure.file.is_some() {
        // pytest's `line` is 0-based: the line of the `def`, or of its first decorator.
        let line = case.attr("line").parse::<u32>().ok();
        (failure.line, failure.message) = (line.map(|l| l.saturating_add(1)), message);
    } else {
        // nextest: the panic's location and message, when the test panicked.
        let location = panic_location(&message).or_else(|| panic_location(&detail));
        (failure.file, failure.line) = location.unzip();
        failure.message = panic_message(&detail).unwrap_or(message);
    }
    failure.detail = detail;
    Some(failure)
}

/// The relative `path.rs:LINE` of a `panicked at path.rs:LINE:COL` (absolute paths are in
/// the toolchain or in dependencies, outside the repository).
fn panic_location(text: &str) -> Option<(String, u32)> {
    let (_, after) = text.split_once("panicked at ")?;
    let location = after.split_whitespace().next()?.trim_end_matches(':');
    let mut parts = location.rsplitn(3, ':');
    let _column: u32 = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let path = parts.next()?.replace('\\', "/");
    let relative = !path.is_empty() && !path.starts_with('/') && !path.contains(':');
    relative.then_some((path, line))
}

/// The lines after a `panicked at` header, up to the backtrace or the note about it.
fn panic_message(text: &str) -> Option<String> {
    let (_, after) = text.split_once("panicked at ")?;
    let (_, body) = after.split_once('\n')?;
    let end = |l: &&str| l.starts_with("note: ") || l.starts_with("stack backtrace:");
    let lines: Vec<&str> = body.lines().take_while(|l| !end(l)).collect();
    let message = lines.join("\n").trim().to_string();
    Some(message).filter(|m| !m.is_empty())
}

/// One `::error` line per failure, at most `limit` lines in all: when more tests failed, the
/// last line says how many are not shown (GitHub shows 10 error annotations per step).
pub fn annotations(failures: &[Failure], limit: usize) -> Vec<String> {
    let over = failures.len() > limit;
    let shown = failures.len().min(limit.saturating_sub(usize::from(over)));
    let mut lines: Vec<String> = failures.iter().take(shown).map(annotation).collect();
    if over && limit > 0 {
        let more = failures.len() - shown;
        let line = format!("::error::{more} more failed tests; see the step summary");
        lines.push(line);
    }
    lines
}

fn annotation(failure: &Failure) -> String {
    crate::output::annotation(
        "error",
        failure.file.as_deref(),
        failure.line.map(u64::from),
        &head(&title(failure), CELL_LIMIT),
        &head(failure.message.trim_end(), MESSAGE_LIMIT),
    )
}

/// A Markdown section: heading, count, a table of the failures, then each one's detail.
pub fn summary_markdown(title: &str, failures: &[Failure]) -> String {
    let mut out = format!("### {}\n\n", cell(title));
    if failures.is_empty() {
        return out + "No failed tests.\n";
    }
    let (n, plural) = (failures.len(), if failures.len() == 1 { "" } else { "s" });
    out += &format!("{n} failed test{plural}\n\n");
    out += "| Test | Message |\n| --- | --- |\n";
    let rows = failures.iter().map(|f| {
        let first_line = f.message.lines().next().unwrap_or_default();
        format!("| {} | {} |\n", cell(&self::title(f)), cell(first_line))
    });
    let more = failures.len() - push_within(&mut out, rows, SUMMARY_BUDGET / 2);
    if more > 0 {
        out.push_str(&format!("| … | {more} more |\n"));
    }
    out.push('\n');
    let blocks = failures.iter().take(MAX_DETAILS).map(details);
    let more = failures.len() - push_within(&mut out, blocks, SUMMARY_BUDGET);
    if more > 0 {
        out.push_str(&format!("_Details of {more} more tests omitted._\n"));
    }
    out
}

/// Appends `items` while `out` stays within `budget` bytes; returns how many it appended.
fn push_within(out: &mut String, items: impl Iterator<Item = String>, budget: usize) -> usize {
    let mut count = 0;
    for item in items {
        if out.len() + item.len() > budget {
            break;
        }
        out.push_str(&item);
        count += 1;
    }
    count
}

fn details(failure: &Failure) -> String {
    let detail = head(failure.detail.trim_end(), DETAIL_LIMIT);
    // A fence longer than any run of backticks in the text.
    let mut fence = "```".to_string();
    while detail.contains(fence.as_str()) {
        fence.push('`');
    }
    let summary = format!("<details><summary>{}</summary>", cell(&title(failure)));
    format!("{summary}\n\n{fence}text\n{detail}\n{fence}\n\n</details>\n\n")
}

/// `classname::name`, the way both tools name a test (nextest's classname is the binary).
fn title(failure: &Failure) -> String {
    let scopes = [&failure.classname, &failure.suite];
    match scopes.into_iter().find(|s| !s.is_empty()) {
        Some(scope) => format!("{scope}::{}", failure.name),
        None => failure.name.clone(),
    }
}

/// Text for a Markdown table cell or an HTML summary: one line, no pipes, no markup.
fn cell(text: &str) -> String {
    let text = head(text, CELL_LIMIT).replace('&', "&amp;");
    let text = text.replace('<', "&lt;").replace('>', "&gt;");
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// At most `max` bytes from the start, cut at a character boundary and marked.
fn head(text: &str, max: usize) -> String {
    match text.get(..text.floor_char_boundary(max)) {
        Some(start) if start.len() < text.len() => format!("{start}… (truncated)"),
        _ => text.to_string(),
    }
}

/// At most half of `DETAIL_LIMIT` bytes from the end, cut at a character boundary and marked.
fn tail(text: &str) -> String {
    let cut = text.ceil_char_boundary(text.len().saturating_sub(DETAIL_LIMIT / 2));
    match text.get(cut..) {
        Some(end) if cut > 0 => format!("(truncated) …{end}"),
        _ => text.to_string(),
    }
}

/// An element with its attributes, child elements and text (all of it, CDATA included).
#[derive(Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, key: &str) -> String {
        let value = self.attrs.iter().find(|(k, _)| k == key);
        value.map(|(_, v)| v.clone()).unwrap_or_default()
    }

    fn named(&self, names: &[&str]) -> Vec<&Element> {
        let children = self.children.iter();
        children
            .filter(|c| names.contains(&c.name.as_str()))
            .collect()
    }
}

/// The document as a tree under a nameless element holding its one root element; an error
/// names the line it was found on.
fn document(xml: &str) -> Result<Element> {
    let mut reader = quick_xml::Reader::from_str(xml);
    // quick-xml's messages repeat the error they wrap: one line, not the chain.
    let tree = build(&mut reader)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            let at = usize::try_from(reader.error_position().max(reader.buffer_position()))
                .unwrap_or(usize::MAX);
            let line = xml
                .as_bytes()
                .iter()
                .take(at)
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!("malformed JUnit XML (line {line})")
        })?;
    Ok(tree)
}

fn build(reader: &mut quick_xml::Reader<&[u8]>) -> Result<Element> {
    use quick_xml::events::Event;
    // The open elements, the document first.
    let mut open = vec![Element::default()];
    loop {
        let event = reader.read_event()?;
        // The depth of an element that starts here (the root's is 1).
        let depth = open.len();
        let Some(top) = open.last_mut() else {
            bail!("an end tag without its start");
        };
        match event {
            Event::Start(tag) => {
                ensure!(depth < MAX_DEPTH, "elements nested too deeply");
                open.push(element(&tag)?);
            }
            Event::Empty(tag) => {
                ensure!(depth < MAX_DEPTH, "elements nested too deeply");
                top.children.push(element(&tag)?);
            }
            Event::End(_) => {
                let done = open.pop().filter(|_| !open.is_empty());
                let (Some(done), Some(parent)) = (done, open.last_mut()) else {
                    bail!("an end tag without its start");
                };
                parent.children.push(done);
            }
            Event::Text(text) => top.text.push_str(&text.decode()?),
            Event::CData(text) => top.text.push_str(&text.decode()?),
            Event::GeneralRef(reference) => {
                let name = reference.decode()?;
                let resolved = match reference.resolve_char_ref()? {
                    Some(c) => Some(c.to_string()),
                    None => quick_xml::escape::resolve_predefined_entity(&name).map(str::to_string),
                };
                let text =
                    resolved.with_context(|| format!("unknown entity &{};", head(&name, 12)))?;
                top.text.push_str(&text);
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::DocType(_) => bail!("a DOCTYPE is not accepted"),
            Event::Eof => break,
        }
    }
    let Some(document) = open.pop().filter(|_| open.is_empty()) else {
        let name = open.last().map(|e| e.name.clone()).unwrap_or_default();
        bail!("truncated: <{name}> is never closed");
    };
    let root_only = document.children.len() == 1 && document.text.trim().is_empty();
    ensure!(root_only, "not one root element, or text outside it");
    Ok(document)
}

/// A start tag's name and attributes (values normalised as XML 1.0 says: entities resolved,
/// literal tabs and newlines turned into spaces).
fn element(tag: &quick_xml::events::BytesStart<'_>) -> Result<Element> {
    let name = std::str::from_utf8(tag.name().as_ref())?.to_string();
    ensure!(!name.is_empty(), "an element without a name");
    let mut element = Element {
        name,
        ..Element::default()
    };
    for attr in tag.attributes() {
        let attr = attr?;
        let key = std::str::from_utf8(attr.key.as_ref())?.to_string();
        let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)?;
        element.attrs.push((key, value.into_owned()));
    }
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cargo-nextest 0.9.143, a profile with `retries = 2`, on a crate whose tests
    /// fail (`fails_assert` on every try, `exits` by `process::exit(3)`), are flaky
    /// (`flaky` fails once) and pass. Trimmed: one of two `<rerunFailure>`s, and (from a run
    /// with `RUST_BACKTRACE=1`) most frames of `fails_panic`'s backtrace.
    const NEXTEST: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="5" skipped="0" failures="3" errors="0" uuid="38be9b13-f414-4288-a51c-13774c147bef" timestamp="2026-12-01T12:05:08.693+00:00" time="0.121">
    <testsuite name="nx" tests="5" skipped="0" errors="0" failures="3">
        <testcase name="tests::fails_assert" classname="nx" timestamp="2026-12-01T12:05:08.694+00:00" time="0.016">
            <failure message="thread &apos;tests::fails_assert&apos; (8977) panicked at src/lib.rs:15:9" type="test failure with exit code 101">thread &apos;tests::fails_assert&apos; (8977) panicked at src/lib.rs:15:9:
assertion `left == right` failed: math is &quot;broken&quot; &amp; &lt;odd&gt;
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace</failure>
            <rerunFailure timestamp="2026-12-01T12:05:08.711+00:00" time="0.016" message="thread &apos;tests::fails_assert&apos; (8985) panicked at src/lib.rs:15:9" type="test failure with exit code 101">thread &apos;tests::fails_assert&apos; (8985) panicked at src/lib.rs:15:9:
assertion `left == right` failed: math is &quot;broken&quot; &amp; &lt;odd&gt;
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
                <system-out>
running 1 test
some stdout &lt;b&gt; &amp; co
test tests::fails_assert ... FAILED

failures:

failures:
    tests::fails_assert

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.00s

</system-out>
                <system-err>some stderr

thread &apos;tests::fails_assert&apos; (8985) panicked at src/lib.rs:15:9:
assertion `left == right` failed: math is &quot;broken&quot; &amp; &lt;odd&gt;
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
</system-err>
            </rerunFailure>
            <system-out>
running 1 test
some stdout &lt;b&gt; &amp; co
test tests::fails_assert ... FAILED

failures:

failures:
    tests::fails_assert

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.00s

</system-out>
            <system-err>some stderr

thread &apos;tests::fails_assert&apos; (8977) panicked at src/lib.rs:15:9:
assertion `left == right` failed: math is &quot;broken&quot; &amp; &lt;odd&gt;
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
</system-err>
        </testcase>
        <testcase name="tests::flaky" classname="nx" timestamp="2026-12-01T12:05:08.763+00:00" time="0.027">
            <flakyFailure timestamp="2026-12-01T12:05:08.750+00:00" time="0.011" message="thread &apos;tests::flaky&apos; (8998) panicked at src/lib.rs:25:60" type="test failure with exit code 101">thread &apos;tests::flaky&apos; (8998) panicked at src/lib.rs:25:60:
flaky first try
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
                <system-out>
running 1 test
test tests::flaky ... FAILED

failures:

failures:
    tests::flaky

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.00s

</system-out>
                <system-err>
thread &apos;tests::flaky&apos; (8998) panicked at src/lib.rs:25:60:
flaky first try
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
</system-err>
            </flakyFailure>
        </testcase>
        <testcase name="tests::passes" classname="nx" timestamp="2026-12-01T12:05:08.790+00:00" time="0.024"/>
        <testcase name="more::exits" classname="nx" timestamp="2026-12-01T12:05:16.481+00:00" time="0.018">
            <failure type="test failure with exit code 3"/>
            <system-out>
running 1 test
</system-out>
            <system-err>about to exit
</system-err>
        </testcase>
        <testcase name="tests::fails_panic" classname="nx" timestamp="2026-12-01T12:05:04.553+00:00" time="0.209">
            <failure message="thread &apos;tests::fails_panic&apos; (8776) panicked at src/lib.rs:19:24" type="test failure with exit code 101">thread &apos;tests::fails_panic&apos; (8776) panicked at src/lib.rs:19:24:
boom: oh no
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
   2: nx::tests::fails_panic
             at ./src/lib.rs:19:24
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.</failure>
        </testcase>
    </testsuite>
</testsuites>
"##;

    /// pytest 9.2.0, `-o junit_family=xunit1 --junitxml=...`, untrimmed: 3 failures, a
    /// fixture error, a pass, a skip and an xfail. In `tests/test_x.py`, `def test_fails():` is
    /// on line 12, `test_param`'s decorator on 17 and `def test_error_in_fixture` on 27.
    const PYTEST_XUNIT1: &str = r##"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="3" skipped="2" tests="7" time="0.166" timestamp="2026-12-01T12:05:31.644292+00:00" hostname="vm"><testcase classname="tests.test_x" name="test_passes" file="tests/test_x.py" line="7" time="0.001" /><testcase classname="tests.test_x" name="test_fails" file="tests/test_x.py" line="11" time="0.001"><failure message="assert 1 == 2">def test_fails():
        x = {"a": 1}
&gt;       assert x["a"] == 2
E       assert 1 == 2

tests/test_x.py:14: AssertionError</failure></testcase><testcase classname="tests.test_x" name="test_param[1]" file="tests/test_x.py" line="16" time="0.001"><failure message="AssertionError: helper says &lt;no&gt; &amp; &quot;bad&quot;&#10;assert 1 == 2">v = 1

    @pytest.mark.parametrize("v", [1, 3])
    def test_param(v):
&gt;       helper(v)

tests/test_x.py:19: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

v = 1

    def helper(v):
&gt;       assert v == 2, "helper says &lt;no&gt; &amp; \"bad\""
E       AssertionError: helper says &lt;no&gt; &amp; "bad"
E       assert 1 == 2

tests/test_x.py:5: AssertionError</failure></testcase><testcase classname="tests.test_x" name="test_param[3]" file="tests/test_x.py" line="16" time="0.001"><failure message="AssertionError: helper says &lt;no&gt; &amp; &quot;bad&quot;&#10;assert 3 == 2">v = 3

    @pytest.mark.parametrize("v", [1, 3])
    def test_param(v):
&gt;       helper(v)

tests/test_x.py:19: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

v = 3

    def helper(v):
&gt;       assert v == 2, "helper says &lt;no&gt; &amp; \"bad\""
E       AssertionError: helper says &lt;no&gt; &amp; "bad"
E       assert 3 == 2

tests/test_x.py:5: AssertionError</failure></testcase><testcase classname="tests.test_x" name="test_error_in_fixture" file="tests/test_x.py" line="26" time="0.001"><error message="failed on setup with &quot;RuntimeError: fixture exploded&quot;">@pytest.fixture
    def broken():
&gt;       raise RuntimeError("fixture exploded")
E       RuntimeError: fixture exploded

tests/test_x.py:24: RuntimeError</error></testcase><testcase classname="tests.test_x" name="test_skipped" file="tests/test_x.py" line="30" time="0.000"><skipped type="pytest.skip" message="not today">tests/test_x.py:31: not today</skipped></testcase><testcase classname="tests.test_x" name="test_xfail" file="tests/test_x.py" line="35" time="0.001"><skipped type="pytest.xfail" message="known" /></testcase></testsuite></testsuites>"##;

    /// pytest 9.2.0's default family (xunit2): no `file` and `line` attributes. Trimmed to
    /// two testcases.
    const PYTEST_XUNIT2: &str = r##"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="3" skipped="2" tests="7" time="0.159" timestamp="2026-12-01T12:05:30.753908+00:00" hostname="vm"><testcase classname="tests.test_x" name="test_passes" time="0.001" /><testcase classname="tests.test_x" name="test_fails" time="0.001"><failure message="assert 1 == 2">def test_fails():
        x = {"a": 1}
&gt;       assert x["a"] == 2
E       assert 1 == 2

tests/test_x.py:14: AssertionError</failure></testcase></testsuite></testsuites>"##;

    fn failure(name: &str, message: &str) -> Failure {
        Failure {
            suite: "suite".into(),
            name: name.into(),
            classname: "crate".into(),
            message: message.into(),
            detail: format!("detail of {name}"),
            file: None,
            line: None,
        }
    }

    #[test]
    fn nextest_failures_with_panic_locations() -> Result<()> {
        let found = failures(NEXTEST)?;
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["tests::fails_assert", "more::exits", "tests::fails_panic"]
        );
        let assert = &found[0];
        assert_eq!(
            (assert.suite.as_str(), assert.classname.as_str()),
            ("nx", "nx")
        );
        assert_eq!(
            assert.message,
            "assertion `left == right` failed: math is \"broken\" & <odd>\n  left: 3\n right: 4"
        );
        assert_eq!(
            (assert.file.as_deref(), assert.line),
            (Some("src/lib.rs"), Some(15))
        );
        // The detail is the first attempt's `<failure>` text, not a rerun's nor the output.
        assert!(
            assert
                .detail
                .starts_with("thread 'tests::fails_assert' (8977) panicked")
        );
        assert!(!assert.detail.contains("8985") && !assert.detail.contains("some stdout"));

        // No message and no text: the type, and the tail of the captured output.
        let exits = &found[1];
        assert_eq!(exits.message, "test failure with exit code 3");
        assert_eq!(
            exits.detail,
            "--- system-err ---\nabout to exit\n\n--- system-out ---\n\nrunning 1 test\n"
        );
        assert_eq!((exits.file.as_deref(), exits.line), (None, None));

        // The message stops before the backtrace; the detail keeps it.
        let panic = &found[2];
        assert_eq!(panic.message, "boom: oh no");
        assert!(panic.detail.contains("stack backtrace:"));
        assert_eq!(
            (panic.file.as_deref(), panic.line),
            (Some("src/lib.rs"), Some(19))
        );
        Ok(())
    }

    #[test]
    fn pytest_failures_and_errors_not_skips() -> Result<()> {
        let found = failures(PYTEST_XUNIT1)?;
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_fails",
                "test_param[1]",
                "test_param[3]",
                "test_error_in_fixture"
            ]
        );
        let fails = &found[0];
        assert_eq!(
            (fails.suite.as_str(), fails.classname.as_str()),
            ("pytest", "tests.test_x")
        );
        assert_eq!(fails.message, "assert 1 == 2");
        assert!(fails.detail.starts_with("def test_fails():\n") && fails.detail.contains("> "));
        // `line="11"` is 0-based: `def test_fails():` is on line 12.
        assert_eq!(
            (fails.file.as_deref(), fails.line),
            (Some("tests/test_x.py"), Some(12))
        );
        assert_eq!(
            found[1].message,
            "AssertionError: helper says <no> & \"bad\"\nassert 1 == 2"
        );
        // A parametrized test: the line of its decorator (17), for every parameter.
        assert_eq!((found[1].line, found[2].line), (Some(17), Some(17)));
        assert_eq!(
            found[3].message,
            "failed on setup with \"RuntimeError: fixture exploded\""
        );
        assert!(found[3].detail.contains("RuntimeError: fixture exploded"));
        assert_eq!(found[3].line, Some(27));
        Ok(())
    }

    #[test]
    fn pytest_line_attribute_is_zero_based() -> Result<()> {
        let xml = r#"<testsuites><testsuite name="pytest"><testcase classname="t" name="a"
            file="tests/t.py" line="11"><failure message="m">no frames here</failure>
            </testcase></testsuite></testsuites>"#;
        let found = failures(xml)?;
        assert_eq!(
            (found[0].file.as_deref(), found[0].line),
            (Some("tests/t.py"), Some(12))
        );
        Ok(())
    }

    #[test]
    fn pytest_xunit2_has_no_location() -> Result<()> {
        let found = failures(PYTEST_XUNIT2)?;
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].file.as_deref(), found[0].line), (None, None));
        assert_eq!(found[0].message, "assert 1 == 2");
        assert_eq!(
            annotations(&found, 10),
            ["::error title=tests.test_x%3A%3Atest_fails::assert 1 == 2"]
        );
        Ok(())
    }

    #[test]
    fn pytest_failure_and_teardown_error_in_one_testcase() -> Result<()> {
        let xml = r#"<testsuites><testsuite name="pytest"><testcase classname="t" name="a"
            file="t.py" line="0"><failure message="assert False">first</failure>
            <error message="failed on teardown with &quot;E&quot;">second</error>
            <system-err>ignored</system-err></testcase></testsuite></testsuites>"#;
        let found = failures(xml)?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message, "assert False");
        assert_eq!(found[0].detail, "first\n\nsecond");
        assert_eq!(found[0].line, Some(1));
        Ok(())
    }

    #[test]
    fn entities_and_cdata() -> Result<()> {
        let xml = "<?xml version=\"1.0\"?><!-- c --><testsuites><testsuite name=\"s\">\
            <testcase name=\"a&amp;b\" classname='c'><error message=\"x&#10;y&#x41;&lt;&gt;&quot;&apos;\
            \ttab\"><![CDATA[raw <b> & ]]> tail &amp;&#x263A;</error></testcase></testsuite></testsuites>";
        let found = failures(xml)?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "a&b");
        assert_eq!(found[0].message, "x\nyA<>\"' tab");
        assert_eq!(found[0].detail, "raw <b> &  tail &\u{263a}");
        Ok(())
    }

    #[test]
    fn empty_and_passing_reports_have_no_failures() -> Result<()> {
        assert!(failures(r#"<testsuites name="nextest-run" tests="0"/>"#)?.is_empty());
        let passing = "\u{feff}<testsuites>\n<testsuite name=\"nx\"/><testsuite name=\"a\">\
            <testcase name=\"t\"><skipped/></testcase></testsuite></testsuites>\n";
        assert!(failures(passing)?.is_empty());
        Ok(())
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let cases = [
            "",
            "not xml",
            "<testsuites>",
            "<testsuites></testsuite>",
            "<a/><b/>",
            "<a b=c/>",
            "<a b=\"c/>",
            "<a>&nbsp;</a>",
            "<a>& x</a>",
            "<a>&#xD800;</a>",
            "<a><![CDATA[x</a>",
            "<!DOCTYPE a><a/>",
            "<a><!-- x</a>",
            "<a></a >x",
            "<a x='1' x2=\"2'/>",
            &format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)),
            "</a>",
            "<>",
        ];
        for xml in &cases {
            assert!(failures(xml).is_err(), "accepted {xml:?}");
        }
        // Nesting: 63 levels are read, the 64th is refused, an empty element included.
        let nested = |open: usize, inner: &str| {
            format!("{}{inner}{}", "<a>".repeat(open), "</a>".repeat(open))
        };
        assert!(failures(&nested(63, "")).is_ok());
        assert!(failures(&nested(64, "")).is_err());
        assert!(failures(&nested(62, "<b/>")).is_ok());
        assert!(failures(&nested(63, "<b/>")).is_err());
        let error = format!("{:#}", failures("<a>\n<b>&bogus;</b></a>").err().unwrap());
        assert!(
            error.contains("line 2") && error.contains("&bogus;"),
            "{error}"
        );
        // A mismatched end tag is said once.
        let error = format!("{:#}", failures("<a><b></c></a>").err().unwrap());
        assert_eq!(error.matches("</c>").count(), 1, "{error}");
        // Every truncation of a real report is an error, never a panic.
        for (cut, _) in NEXTEST.char_indices().filter(|(i, _)| i % 7 == 0) {
            assert!(
                failures(&NEXTEST[..cut]).is_err(),
                "accepted a cut at {cut}"
            );
        }
        // Nor does a stray markup character anywhere (whatever the result).
        for (at, _) in PYTEST_XUNIT1.char_indices().filter(|(i, _)| i % 5 == 0) {
            for c in ["<", ">", "&", "\"", "'", "/", "]]>", "<![CDATA["] {
                let _ = failures(&format!(
                    "{}{c}{}",
                    &PYTEST_XUNIT1[..at],
                    &PYTEST_XUNIT1[at..]
                ));
            }
        }
    }

    #[test]
    fn annotations_escape_data_and_properties() {
        let mut f = failure("t", "50% done\r\nnext");
        f.classname = "a,b:c".into();
        f.file = Some("src/x,y.rs".into());
        f.line = Some(7);
        assert_eq!(
            annotations(&[f.clone()], 10),
            ["::error file=src/x%2Cy.rs,line=7,title=a%2Cb%3Ac%3A%3At::50%25 done%0D%0Anext"]
        );
        f.file = None;
        assert_eq!(
            annotations(&[f], 10),
            ["::error title=a%2Cb%3Ac%3A%3At::50%25 done%0D%0Anext"]
        );
    }

    #[test]
    fn annotations_of_a_real_report() -> Result<()> {
        let lines = annotations(&failures(NEXTEST)?, 10);
        assert_eq!(
            lines[0],
            "::error file=src/lib.rs,line=15,title=nx%3A%3Atests%3A%3Afails_assert::assertion \
             `left == right` failed: math is \"broken\" & <odd>%0A  left: 3%0A right: 4"
        );
        assert_eq!(
            lines[1],
            "::error title=nx%3A%3Amore%3A%3Aexits::test failure with exit code 3"
        );
        assert_eq!(lines.len(), 3);
        Ok(())
    }

    #[test]
    fn annotations_stop_at_the_limit() {
        let many: Vec<Failure> = (0..12).map(|i| failure(&format!("t{i}"), "m")).collect();
        let lines = annotations(&many, 10);
        assert_eq!(lines.len(), 10);
        assert!(lines[8].starts_with("::error title=crate%3A%3At8::"));
        assert_eq!(
            lines[9],
            "::error::3 more failed tests; see the step summary"
        );
        assert_eq!(annotations(&many[..10], 10).len(), 10);
        assert!(!annotations(&many[..10], 10)[9].contains("more failed"));
        assert!(annotations(&many, 0).is_empty());
        assert!(annotations(&[], 10).is_empty());
    }

    #[test]
    fn summary_table_and_details() -> Result<()> {
        let mut found = failures(NEXTEST)?;
        found[0].message = "a | b\nsecond line".into();
        let md = summary_markdown("Rust tests", &found);
        assert!(md.starts_with("### Rust tests\n\n3 failed tests\n\n| Test | Message |\n"));
        assert!(md.contains("\n| nx::tests::fails_assert | a \\| b |\n"));
        assert!(md.contains("| nx::tests::fails_panic | boom: oh no |\n"));
        assert!(md.contains("<details><summary>nx::more::exits</summary>\n\n```text\n"));
        assert!(!md.contains("second line"));
        assert_eq!(summary_markdown("T", &[]), "### T\n\nNo failed tests.\n");
        Ok(())
    }

    #[test]
    fn summary_size_is_bounded() {
        let mut big = failure(&"n".repeat(150), "m");
        big.detail = "é```x\n".repeat(2_000);
        let one = summary_markdown("T", std::slice::from_ref(&big));
        assert!(one.len() < DETAIL_LIMIT + 1024, "{}", one.len());
        assert!(one.contains("\n````text\n") && one.contains("… (truncated)"));
        let many = vec![big; 2000];
        let md = summary_markdown("T", &many);
        assert!(md.len() < 1024 * 1024, "{}", md.len());
        assert!(md.contains("more tests omitted") && md.contains("| … |"));
        assert_eq!(md.matches("<details>").count(), MAX_DETAILS);

        // A long name is cut once, at a character boundary, in the table and the title.
        let long = failure(&"é".repeat(300), "m");
        let md = summary_markdown("T", std::slice::from_ref(&long));
        let row = md
            .lines()
            .find(|l| l.starts_with("| crate::"))
            .unwrap_or_default();
        assert_eq!(row.matches("(truncated)").count(), 1, "{row}");
        let title = annotations(&[long], 1).join("");
        assert_eq!(title.matches("(truncated)").count(), 1, "{title}");
    }
}

/// A test command whose JUnit report turns failed tests into annotations and a step summary on
/// GitHub Actions. The command's own exit status decides the outcome; a missing or unreadable
/// report is a warning, never a second failure.
#[derive(Debug)]
pub struct TestRun {
    pub cmd: Cmd,
    /// Where the command writes its report, relative to the workspace root.
    pub report: PathBuf,
    /// The step summary's heading.
    pub title: String,
    /// Prefix for the report's file paths (pytest names them relative to its rootdir).
    pub path_prefix: &'static str,
}

impl fmt::Display for TestRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run `{}`; on GitHub Actions annotate its failed tests from {}",
            self.cmd,
            self.report.display()
        )
    }
}

impl TestRun {
    /// After the command ran: on GitHub Actions, its report's failures as annotations and a
    /// step-summary table.
    fn annotate(&self, runner: &mut dyn Runner, result: &Result<()>) {
        if !runner.ctx().github_actions {
            return;
        }
        let report = runner.ctx().root.join(&self.report);
        match std::fs::read_to_string(&report)
            .map_err(anyhow::Error::from)
            .and_then(|xml| failures(&xml))
        {
            Ok(mut found) if !found.is_empty() => {
                for f in &mut found {
                    f.file = f.file.take().map(|p| format!("{}{p}", self.path_prefix));
                }
                // GitHub shows 10 error annotations a step; the stage's own is one.
                for line in annotations(&found, 9) {
                    eprintln!("{line}");
                }
                runner
                    .out()
                    .step_summary(&summary_markdown(&self.title, &found));
            }
            Ok(_) => {}
            Err(e) if result.is_err() => runner.warn(&format!(
                "no test report to annotate failures from ({}): {e:#}",
                self.report.display()
            )),
            Err(_) => {}
        }
    }

    fn clear_report(&self, runner: &dyn Runner) {
        let _ = std::fs::remove_file(runner.ctx().root.join(&self.report));
    }
}

impl Action for TestRun {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        self.clear_report(runner);
        let result = runner.run(&self.cmd);
        self.annotate(runner, &result);
        result.map(|()| Outcome::Continue)
    }
}

/// Test runs started at once (pytest on every interpreter, against the same servers: each
/// test uses its own prefix), each annotated as [`TestRun`] is; fails naming every run that
/// failed.
#[derive(Debug)]
pub struct TestRuns(pub Vec<TestRun>);

impl fmt::Display for TestRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("at once:")?;
        for run in &self.0 {
            write!(f, "\n    - {run}")?;
        }
        Ok(())
    }
}

impl Action for TestRuns {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        for run in &self.0 {
            run.clear_report(runner);
        }
        let cmds: Vec<Cmd> = self.0.iter().map(|r| r.cmd.clone()).collect();
        let results = runner.run_together(&cmds)?;
        let mut failed = Vec::new();
        for (run, result) in self.0.iter().zip(&results) {
            run.annotate(runner, result);
            if let Err(e) = result {
                failed.push(format!("{e:#}"));
            }
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "{} of {} test runs failed: {}",
                failed.len(),
                self.0.len(),
                failed.join("; ")
            );
        }
        Ok(Outcome::Continue)
    }
}
