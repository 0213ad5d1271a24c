"""Package shape: a light front door, argparse only in qtrigger/cli, an acyclic import graph,
and finished runs written by version 0.1 still open through FinishedRun."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from qtrigger.errors import QTriggerError
from qtrigger.results import RunResult
from qtrigger.runs.finished import FinishedRun

PACKAGE = REPO / "qtrigger"
V01 = REPO / "tests" / "data" / "v0_1"
HEAVY = ("tensorflow", "hls4ml", "tf_keras", "qkeras")
# argparse still defined in modules other helpers own; the lead moves them into qtrigger/cli at integration
ARGPARSE_PENDING: set[str] = set()


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('LOADED:', *[m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "QTRIGGER_NATIVE_LOGS": "1"})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1].split()[1:]


def test_import_qtrigger_is_light():
    assert _loaded_after("import qtrigger; qtrigger.load_config; qtrigger.FinishedRun") == []


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["hls", "check", "--help"], ["scan", "--help"],
                                  ["data", "validate", "--help"]])
def test_cli_help_is_light(argv):
    code = f"from qtrigger.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0"
    assert _loaded_after(code) == []


def test_front_door_names_resolve():
    import qtrigger

    for name in qtrigger.__all__:
        assert callable(getattr(qtrigger, name)), name
    with pytest.raises(AttributeError):
        qtrigger.no_such_verb  # noqa: B018


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_argparse_only_in_cli():
    offenders = []
    for path in _sources():
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("qtrigger/cli/") or rel in ARGPARSE_PENDING:
            continue
        if "add_argument(" in path.read_text() or "import argparse" in path.read_text():
            offenders.append(rel)
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# The flow, lowest first: a module may import its own package or one listed before it. Root modules other than
# the front door (`__init__`, `__main__`) are the cross-cutting helpers every stage may use.
FLOW = ("<root>", "rundir", "config", "data", "generate", "inputs", "models", "emulate", "firmware", "estimate",
        "trigger", "levels", "runs", "scan", "cli", "<front>")


def _layer(module: str) -> int:
    parts = module.split(".")
    if module in ("qtrigger", "qtrigger.__main__"):
        return FLOW.index("<front>")
    if len(parts) == 2 and not (PACKAGE / parts[1]).is_dir():
        return FLOW.index("<root>")
    return FLOW.index(parts[1])


def _imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every qtrigger module ``path`` imports, at module level or inside a function; ``from P import m`` counts as
    an import of the submodule ``P.m`` where one exists."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return {m for m in found if m in modules and m != name}


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p) for p in _sources()}
    return {_module_name(p): _imported_modules(p, modules) for p in _sources()}


def test_imports_follow_the_flow():
    """No import (function-level ones included) points up the flow of packages."""
    upward = sorted(f"{a} -> {b}" for a, deps in _import_graph().items() for b in deps if _layer(b) > _layer(a))
    assert upward == [], "imports against the flow " + str(FLOW) + ":\n" + "\n".join(upward)


def test_imports_are_acyclic():
    """No import cycle, counting imports inside functions."""
    graph, state = _import_graph(), {}

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, dep]))
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


# --------------------------------------------------------------------------- runs written by v0.1

def _copy(tmp_path, what):
    target = tmp_path / what
    shutil.copytree(V01 / what, target)
    return target


def test_finished_run_v01_round_trips_metrics(tmp_path):
    run_dir = _copy(tmp_path, "runs") / "v01_run"
    run = FinishedRun.load(run_dir)
    written = json.loads((run_dir / "metrics.json").read_text())
    assert run.result.to_json() == written  # same keys, same order, same values
    assert list(run.result.to_json()) == list(written)
    assert run.name == "v01_run" and run.config.name == "v01_run"
    assert run.result.qat.auc == written["qat"]["auc"]
    assert run.preprocessor.names == run.config.features.names
    assert run.preprocessor.saturated_fraction is None  # v0.1 did not record it
    jets = run.test_jets()
    assert jets["inputs"].shape == (written["data"]["n_jets"]["test"], len(run.config.features.names))
    assert run.run_id is None  # v0.1 had no run ids: nothing to check


def test_finished_run_v01_scan_trial(tmp_path):
    trial = _copy(tmp_path, "scans") / "v01scan" / "trials" / "abc123def456"
    result = json.loads((trial / "result.json").read_text())
    run = FinishedRun.load(trial / "v01scan_abc123def456")
    from qtrigger.scan import summarise_metrics

    recomputed = summarise_metrics(run.result)
    for key, value in result["metrics"].items():
        if key != "run_wall_seconds":
            assert recomputed[key] == value, key


def test_run_result_mapping_interface(tmp_path):
    run = FinishedRun.load(_copy(tmp_path, "runs") / "v01_run")
    result = run.result
    assert isinstance(result, RunResult)
    assert result["qat"]["auc"] == result.qat.auc
    assert result.get("float") is None and "hls" in result


def test_results_table_reads_typed_result(tmp_path):
    from qtrigger.runs.report import results_table

    run = FinishedRun.load(_copy(tmp_path, "runs") / "v01_run")
    table = results_table(run.result)
    assert f"{run.result.qat.auc:.4f}" in table
    assert f"{run.result.csim['mismatched_jets']} / {run.result.csim['jets']}" in table


def test_finished_run_missing_section_is_one_line(tmp_path):
    run_dir = _copy(tmp_path, "runs") / "v01_run"
    (run_dir / "metrics.json").write_text(json.dumps({"run": "x"}))
    with pytest.raises(QTriggerError, match=r"metrics.json: not a qtrigger run's metrics \(no data, model, qat\)"):
        FinishedRun.load(run_dir)


def test_sections_keep_keys_added_by_newer_stages(tmp_path):
    run_dir = _copy(tmp_path, "runs") / "v01_run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["model"]["batchnorm"] = {"folded_layers": 2}
    metrics["qat"]["note"] = "x"
    metrics["compare"] = {"rows": []}
    result = RunResult.from_json(metrics)
    assert result.model.extra == {"batchnorm": {"folded_layers": 2}}
    assert result.to_json() == metrics and list(result.to_json()) == list(metrics)


# --------------------------------------------------------------------------- variations live in their registries

# Where the names of a variation may be read: the config schema and the registries that dispatch on them.
VARIATION_READERS = {"level": ("qtrigger/config.py", "qtrigger/config/", "qtrigger/levels/base.py"),
                     "form": ("qtrigger/config.py", "qtrigger/config/", "qtrigger/models/build.py"),
                     "method": ("qtrigger/config.py", "qtrigger/config/", "qtrigger/models/build.py")}


def _quantization_aliases(tree: ast.AST) -> set[str]:
    """Names bound to a ``.quantization`` section (``q = config.quantization``)."""
    return {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "quantization"
            for target in node.targets if isinstance(target, ast.Name)}


def _variation_reads(path: Path, rel: str | None = None) -> list[str]:
    """``x.level`` / ``x.form`` anywhere, ``<quantization>.method`` and ``getattr(x, "level"|"form")`` in ``path``
    (``rel``: its place in the repository, default its real one)."""
    tree = ast.parse(path.read_text())
    aliases = _quantization_aliases(tree) | {"quantization", "quant_cfg"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("level", "form"):
            found.append((node.attr, node.lineno))
        elif isinstance(node, ast.Attribute) and node.attr == "method":
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if name in aliases:
                found.append(("method", node.lineno))
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in ("level", "form")):
            found.append((node.args[1].value, node.lineno))
    rel = rel or path.relative_to(REPO).as_posix()
    return [f"{rel}:{line} reads .{what}" for what, line in found
            if not any(rel == allowed or rel.startswith(allowed) for allowed in VARIATION_READERS[what])]


def test_variations_are_read_only_by_their_registries():
    """The pipeline never asks which input level, model form or quantization method it runs."""
    offenders = [hit for path in _sources() for hit in _variation_reads(path)]
    assert offenders == []


def test_variation_reads_are_detected(tmp_path):
    """The check above sees direct reads, aliases and getattr."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f(config):\n    features = config.features\n    q = config.quantization\n"
                     "    return features.level, config.model.form, q.method, getattr(features, 'level')\n")
    hits = _variation_reads(probe, "qtrigger/runs/probe.py")
    assert sorted(h.split(" reads ")[1] for h in hits) == [".form", ".level", ".level", ".method"]
    in_registry = _variation_reads(probe, "qtrigger/levels/base.py")  # the level registry may read .level only
    assert sorted(h.split(" reads ")[1] for h in in_registry) == [".form", ".method"]
