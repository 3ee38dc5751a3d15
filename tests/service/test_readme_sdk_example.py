"""The README's ten-line SDK example prints exactly what the README says it prints."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _example() -> tuple[str, str]:
    text = README.read_text()
    section = text.split("## Python SDK in ten lines", 1)[1]
    code, output = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    return code, output


def test_sdk_example_output(server):
    code, expected = _example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    assert "127.0.0.1:50051" in code
    code = code.replace("127.0.0.1:50051", server.grpc_target)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
