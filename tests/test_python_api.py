"""The example of docs/python_api.md runs as written: compose, run, read back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "python_api.md"


def test_the_documented_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(PAGE), "exec"), namespace)
    rows, table = namespace["rows"], namespace["table"]
    assert len(rows) == 3 and (tmp_path / "runs" / "api" / "cycles.csv").is_file()
    assert table[0]["strategy"] == "entropy"
    assert "after" in capsys.readouterr().out
