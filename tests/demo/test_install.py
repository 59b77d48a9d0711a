"""`scripts/install` as it meets a machine with pyenv: quiet when a Python 3.11+ exists, one
clear line when none does."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"

# What a pyenv shim says for a version pyenv knows of but has not made active.
PYENV_SHIM = """#!/bin/sh
name=$(basename "$0")
echo "pyenv: $name: command not found" >&2
echo >&2
echo "The \\`$name' command exists in these Python versions:" >&2
echo "  3.13.0" >&2
exit 127
"""
OLD_PYTHON = """#!/bin/sh
case "$2" in
  *platform*) echo 3.10.12 ;;
  *) exit 1 ;;
esac
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _checkout(tmp_path: Path, python3: str | None) -> tuple[Path, str]:
    """A checkout whose .venv is already installed, and a PATH where pyenv's shims for
    python3.13 and python3.12 come first, then `python3` (a link to `python3`, or an old
    Python) and the few tools the script uses."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "install", checkout / "scripts" / "install")
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    (checkout / "pyproject.toml").write_bytes(pyproject)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    _executable(checkout / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")
    stamp = hashlib.sha256(pyproject).hexdigest()[:16]
    (checkout / ".venv" / f".installed-demo-{stamp}").touch()

    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):
        _executable(shims / name, PYENV_SHIM)
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "basename", "sha256sum", "cut", "rm", "touch"):
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (tools / tool).symlink_to(found)
    if python3 is None:
        _executable(tools / "python3", OLD_PYTHON)
    else:
        (tools / "python3").symlink_to(python3)
    return checkout, f"{shims}:{tools}"


def _install(checkout: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(checkout / "scripts" / "install"), "demo"],
        env={"PATH": path, "HOME": str(checkout)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_install_says_nothing_of_pyenv_versions_it_passes_over(tmp_path: Path) -> None:
    checkout, path = _checkout(tmp_path, sys.executable)
    done = _install(checkout, path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_install_says_in_one_line_that_no_python_is_new_enough(tmp_path: Path) -> None:
    checkout, path = _checkout(tmp_path, None)
    done = _install(checkout, path)
    assert done.returncode == 1
    assert done.stderr == (
        "Bazaar Bridge needs Python 3.11 or newer; "
        "tried python3.13 python3.12 python3.11 python3 (python3 is 3.10.12).\n"
    )
