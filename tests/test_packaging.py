"""A built wheel carries the exercises and solutions: `grade list` and `grade demo` work from anywhere."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (not editable) into a private directory."""
    tmp = tmp_path_factory.mktemp("pkg")
    wheel_dir = tmp / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr and "setuptools" in proc.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheel_dir.glob("*.whl")
    target = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


def _run(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(installed)
    script = installed / "bin" / "grade"
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_wheel_lists_exercises_from_any_directory(installed, tmp_path):
    proc = _run(installed, "list", "--lang", "en", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ex1" in proc.stdout and "ex2" in proc.stdout
    assert (installed / "grader" / "exercises" / "ex1" / "exercise.yaml").is_file()
    assert (installed / "grader" / "solutions" / "ex1" / "pod.yaml").is_file()


def test_wheel_runs_the_demo(installed, tmp_path):
    proc = _run(installed, "demo", "ex1", "--lang", "en", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Score: 10/10" in proc.stdout
    assert str(ROOT) not in proc.stdout + proc.stderr  # nothing came from the checkout


def test_wheel_carries_the_subpackages_and_the_test_extra(installed):
    """grader.checks and grader.cluster are listed packages, and `pip install '.[test]'` brings
    import-linter, which tests/test_layers.py needs."""
    assert (installed / "grader" / "checks" / "pods.py").is_file()
    assert (installed / "grader" / "cluster" / "sandbox.py").is_file()
    (metadata,) = installed.glob("k8s_exercise_grader-*.dist-info/METADATA")
    requires = [line for line in metadata.read_text(encoding="utf-8").splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: import-linter") and 'extra == "test"' in line for line in requires), requires
