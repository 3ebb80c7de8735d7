"""The README's example runs and prints what it says it prints."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_one_python_example() -> None:
    assert len(python_blocks()) == 1


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_blocks()[0]
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.strip()
    # The example ends with the expected output as a comment.
    comment = "".join(
        line.lstrip("# ").strip() for line in code.splitlines()[-2:] if line.startswith("#")
    )
    assert ast.literal_eval(printed) == ast.literal_eval(comment)
