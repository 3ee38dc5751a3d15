"""The README's REST examples, run exactly as written (with the test server's address)
through curl; each must print the JSON the README shows after it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
DOC_BASE = "http://127.0.0.1:8080"


def examples() -> list[tuple[str, str]]:
    """(command, expected output) pairs of the README's REST section."""
    text = README.read_text()
    section = text.split("## REST / JSON", 1)[1].split("\n## ", 1)[0]
    pairs = re.findall(r"```bash\n(curl .*?)```\s*\n\s*prints\s*\n\s*```json\n(.*?)```", section, re.S)
    return [(cmd.strip(), out.strip()) for cmd, out in pairs]


def test_readme_has_list_and_base64_examples():
    found = examples()
    assert len(found) == 2
    assert '"data"' in found[0][0] and '"b64"' in found[1][0]


@pytest.mark.parametrize("command,expected", examples(), ids=["lists", "b64"])
def test_readme_curl_example(server, command, expected):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    assert DOC_BASE in command
    command = command.replace(DOC_BASE, server.http_base)
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(expected)
    assert result.stdout.strip() == expected  # byte for byte, as documented
