"""The house rules of grader/: the import-linter contracts of pyproject.toml hold (and do catch a
break), no import circle anywhere, no module over 500 lines, and the cluster and the core agree
on the kubeconfig extension they share by name only."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADER = ROOT / "grader"
MAX_LINES = 500


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``grader`` package found in ``cwd`` (it puts cwd first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("kube.py", "from .cli import main  # noqa", "The grading core is layered"),
    ("commands.py", "from .cluster import EmbeddedCluster  # noqa", "only through grader.embedded"),
    ("cluster/sandbox.py", "from ..errors import UsageError  # noqa", "imports nothing of the grading core"),
], ids=["kube-imports-cli", "command-imports-cluster-directly", "cluster-imports-core-error"])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken):
    """The same contracts on a copy of grader/ with one import added: that contract, and only it,
    is reported broken (so the test above cannot pass by checking nothing)."""
    shutil.copytree(GRADER, tmp_path / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "grader" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _added():\n    {line}\n", encoding="utf-8")
    proc = _lint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 kept, 1 broken" in proc.stdout
    broken_section = proc.stdout.split("Broken contracts", 1)[1]
    assert broken in broken_section


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Modules of grader that ``path`` imports anywhere (inside functions and TYPE_CHECKING too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_import_circle_anywhere_in_grader():
    """Between any modules, inside grader.checks and grader.cluster too (the layers contract only
    orders grader's direct children)."""
    paths = {_module_name(p): p for p in GRADER.rglob("*.py")}
    graph = {m: _imports(p, m, set(paths)) - {m.rpartition(".")[0]} for m, p in paths.items()}
    circles = []
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                circles.append(trail[trail.index(n):] + [n])
            elif n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []
    # the scan sees imports inside functions (commands imports grader.embedded only in demo/sandbox)
    assert {"grader.grading", "grader.embedded"} <= graph["grader.commands"]


def test_no_module_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in GRADER.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_cluster_and_core_name_the_kubeconfig_extension_alike():
    """The router address reaches the probe through this name; each side spells it itself."""
    from grader.cluster import SANDBOX_EXTENSION as written
    from grader.kube import SANDBOX_EXTENSION as read

    assert written == read == "grader.dev/sandbox"
