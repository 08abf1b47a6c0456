"""A quiet `make install`: setuptools' "experimental" warnings about `[tool.setuptools.ext-modules]` and its
editable-install banner are filtered (the Makefile's QUIET_BUILD), while a real build error still shows.

The build runs as pip runs it for `make install` (setuptools' backend, build_editable, in a copy of the
project), with the venv's own setuptools (the dev extras ask for the version pyproject.toml builds with):
nothing is downloaded."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the project with setuptools' backend

REPO = Path(__file__).resolve().parents[2]
BUILD = "import setuptools.build_meta as b, sys; print(getattr(b, sys.argv[1])(sys.argv[2]))"


def quiet_build_environment() -> dict[str, str]:
    """The variables the Makefile's QUIET_BUILD sets for `pip install -e`."""
    makefile = (REPO / "Makefile").read_text()
    (line,) = re.findall(r"^QUIET_BUILD\s*=\s*(.+)$", makefile, flags=re.MULTILINE)
    assignments = [word.split("=", 1) for word in shlex.split(line)]
    assert assignments and all(len(a) == 2 for a in assignments), line
    return dict(assignments)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def build_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the project and the environment that runs setuptools' backend on it."""
    root = tmp_path_factory.mktemp("install")
    requires = re.search(r'requires = \["setuptools>=(\d+)"\]', (REPO / "pyproject.toml").read_text())
    assert requires, "pyproject.toml's build-system requires setuptools>=N"
    if int(version("setuptools").split(".")[0]) < int(requires.group(1)):
        pytest.skip(f"this venv's setuptools {version('setuptools')} is older than the build's")
    source = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in ("engine", "training", "bot"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "NOTICE"):
        shutil.copy2(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return source, env


def backend(source: Path, env: dict[str, str], hook: str, out: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", BUILD, hook, str(out)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_install_prints_no_experimental_warning_nor_the_editable_banner(
    build_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    source, env = build_env
    loud = backend(source, env, "prepare_metadata_for_build_editable", tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    if "experimental" not in loud.stderr:  # a setuptools that no longer warns: nothing left to filter
        pytest.skip("this setuptools no longer calls ext-modules experimental")

    quiet = backend(source, {**env, **quiet_build_environment()}, "build_editable", tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().endswith(".whl") and list((tmp_path / "quiet").glob("*.whl"))
    assert "experimental" not in quiet.stderr, quiet.stderr
    assert "Editable installation" not in quiet.stderr, quiet.stderr
    assert "Please be careful" not in quiet.stderr, quiet.stderr


def test_a_build_error_still_shows(build_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    source, env = build_env
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    pyproject = broken / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('license = "Apache-2.0"', "license = 5"))
    out = backend(broken, {**env, **quiet_build_environment()}, "build_editable", tmp_path / "out")
    assert out.returncode != 0 and "project.license" in out.stderr, out.stderr
