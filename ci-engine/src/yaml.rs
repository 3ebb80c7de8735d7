//! A small YAML writer for the generated workflows: maps keep their order, scalars are quoted
//! only when YAML would read them as something else, multi-line strings become `|` blocks, and
//! a scalar may carry a trailing comment (an action's release after its SHA). A test reads the
//! output back with serde_yaml_ng and compares it with the tree.

/// A YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    /// A string, quoted when needed.
    Str(String),
    /// Written as it is: booleans, numbers.
    Raw(String),
    /// A key with no value (`workflow_dispatch:`).
    Null,
    /// A string with a trailing `# comment`.
    Commented(String, String),
}

impl Node {
    pub fn str(text: impl Into<String>) -> Node {
        Node::Str(text.into())
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
        Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn seq(items: impl IntoIterator<Item = Node>) -> Node {
        Node::Seq(items.into_iter().collect())
    }

    pub fn bool(value: bool) -> Node {
        Node::Raw(value.to_string())
    }

    pub fn int(value: u32) -> Node {
        Node::Raw(value.to_string())
    }

    fn is_block(&self) -> bool {
        matches!(self, Node::Map(m) if !m.is_empty())
            || matches!(self, Node::Seq(s) if !s.is_empty())
    }
}

/// The document, ending in a newline.
pub fn render(node: &Node) -> String {
    let mut out = String::new();
    write_block(node, 0, &mut out);
    out
}

fn write_block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(&scalar(key));
                out.push(':');
                write_value(value, indent, out);
            }
        }
        Node::Seq(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Node::Map(entries) if !entries.is_empty() => {
                        // `- key: value`, the following keys aligned under the first.
                        let mut nested = String::new();
                        write_block(item, indent + 2, &mut nested);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    _ => write_value(item, indent, out),
                }
            }
        }
        other => {
            out.push_str(&pad);
            write_value(other, indent, out);
        }
    }
}

/// What follows `key:` or `-`.
fn write_value(value: &Node, indent: usize, out: &mut String) {
    match value {
        _ if value.is_block() => {
            out.push('\n');
            write_block(value, indent + 2, out);
        }
        Node::Map(_) => out.push_str(" {}\n"),
        Node::Seq(_) => out.push_str(" []\n"),
        Node::Null => out.push('\n'),
        Node::Raw(text) => {
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
        Node::Str(text) if text.contains('\n') => {
            out.push_str(" |\n");
            for line in text.trim_end_matches('\n').lines() {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Node::Str(text) => {
            out.push(' ');
            out.push_str(&scalar(text));
            out.push('\n');
        }
        Node::Commented(text, comment) => {
            out.push(' ');
            out.push_str(&scalar(text));
            out.push_str(" # ");
            out.push_str(comment);
            out.push('\n');
        }
    }
}

/// A one-line string as a plain scalar when YAML reads it back as the same string, else
/// single-quoted.
fn scalar(text: &str) -> String {
    let reserved = ["true", "false", "null", "~", ""];
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e');
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "$./_(~".contains(c));
    let plain = first_ok
        && !numeric
        && !reserved.contains(&text.to_ascii_lowercase().as_str())
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':')
        && !text.ends_with(' ')
        && !text.contains(['\'', '"', '\t', '\\']);
    if plain {
        text.to_string()
    } else if !text.contains(['"', '\\']) {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml_ng::Value;

    /// The value serde_yaml_ng should read back.
    fn expected(node: &Node) -> Value {
        match node {
            Node::Map(entries) => Value::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (Value::String(k.clone()), expected(v)))
                    .collect(),
            ),
            Node::Seq(items) => Value::Sequence(items.iter().map(expected).collect()),
            Node::Str(text) if text.contains('\n') => {
                Value::String(format!("{}\n", text.trim_end_matches('\n')))
            }
            Node::Str(text) | Node::Commented(text, _) => Value::String(text.clone()),
            Node::Raw(text) => serde_yaml_ng::from_str(text).unwrap(),
            Node::Null => Value::Null,
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let tree = Node::map([
            ("name", Node::str("CI")),
            ("on", Node::map([("workflow_dispatch", Node::Null)])),
            (
                "jobs",
                Node::map([(
                    "build",
                    Node::map([
                        ("timeout-minutes", Node::int(30)),
                        ("empty", Node::map(Vec::<(String, Node)>::new())),
                        (
                            "steps",
                            Node::seq([
                                Node::map([(
                                    "uses",
                                    Node::Commented("a/b@0123".into(), "v1.2.3".into()),
                                )]),
                                Node::map([
                                    ("if", Node::str("${{ inputs.lint }}")),
                                    ("run", Node::str("cargo xtask ci")),
                                    ("with", Node::map([("python-version", Node::str("3.10"))])),
                                ]),
                                Node::map([("run", Node::str("a: b\n  indented\n\nlast # no\n"))]),
                                Node::str("it's: 'quoted' # here"),
                                Node::str("true"),
                                Node::bool(false),
                            ]),
                        ),
                    ]),
                )]),
            ),
        ]);
        let text = render(&tree);
        let read: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(read, expected(&tree), "{text}");
        assert!(text.contains("uses: a/b@0123 # v1.2.3\n"), "{text}");
        assert!(text.contains("python-version: \"3.10\"\n"), "{text}");
    }
}
