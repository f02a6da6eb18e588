"""The house rules, enforced: each module imports only what stands above it in the flow, and
torch, diffusers and transformers only in the model modules.

Every import is counted, type-only ones (under ``TYPE_CHECKING``) and function-level ones too,
so there can be no import cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "inpaint_aug"

# Flow order. A module may import any module listed before it, never one after it.
ORDER = [
    "version",
    "errors",
    "choices",
    "checks",
    "geometry",
    "files",
    "model_family",
    "model_options",
    "options",
    "dataset.coco",
    "dataset.prompt_checks",
    "dataset.prompts",
    "dataset.schedules",
    "dataset.images",
    "exporters.yolo_labels",
    "exporters.yolo_layout",
    "exporters.yolo",
    "pipeline.control",
    "pipeline.carry",
    "pipeline.background",
    "pipeline.regions",
    "pipeline.balance",
    "pipeline.plan",
    "pipeline.crops",
    "pipeline.predict",
    "pipeline.verify",
    "pipeline.hub",
    "pipeline.tiny",
    "pipeline.tiny_families",
    "pipeline.families",
    "pipeline.loading",
    "pipeline.latents",
    "pipeline.backend",
    "pipeline.verifiers",
    "pipeline.verifier_loading",
    "pipeline.models",
    "pipeline.batch",
    "pipeline.records",
    "pipeline.chunks",
    "pipeline.finish",
    "pipeline.prepare",
    "pipeline.journal",
    "pipeline.lock",
    "pipeline.report",
    "pipeline.signals",
    "pipeline.progress",
    "pipeline.engine",
    "pipeline.execute",
    "executors.ray_worker",
    "executors.ray",
    "pipeline.run",
    "inspect.sheet",
    "inspect.validate",
    "inspect.preview",
    "demo.synthetic",
    "cli.common",
    "cli.validate",
    "cli.preview",
    "cli.run",
    "cli",
]
MODEL_MODULES = {
    "pipeline.backend",
    "pipeline.tiny",
    "pipeline.tiny_families",
    "pipeline.families",
    "pipeline.loading",
    "pipeline.latents",
    "pipeline.verifiers",
    "pipeline.verifier_loading",
}
HEAVY = {"torch", "diffusers", "transformers"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if (name and "." in name) or name in ORDER}


def imports(path: Path) -> set[str]:
    """Every module this file imports, as absolute dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            base = node.module or ""
            if base != "inpaint_aug":  # `from inpaint_aug import geometry` is a submodule
                names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def internal(names: set[str]) -> set[str]:
    """The package's own modules among ``names`` (``inpaint_aug.x.y`` -> ``x.y``)."""
    known = set(ORDER) | {n.split(".")[0] for n in ORDER}
    found = set()
    for name in names:
        if name.startswith("inpaint_aug."):
            rel = name.removeprefix("inpaint_aug.")
            while rel and rel not in known:
                rel = rel.rpartition(".")[0]
            if rel in ORDER:
                found.add(rel)
        elif name == "inpaint_aug":
            found.add("<package root>")
    return found


def test_every_module_has_its_place():
    missing = sorted(
        set(modules())
        - set(ORDER)
        - {"dataset", "pipeline", "exporters", "inspect", "demo", "executors"}
    )
    assert not missing, f"add these modules to ORDER in {__file__}: {missing}"


@pytest.mark.parametrize("name", ORDER)
def test_imports_only_what_stands_above(name):
    path = modules().get(name)
    assert path is not None, f"{name} is listed but does not exist"
    rank = ORDER.index(name)
    for other in internal(imports(path)):
        assert other != "<package root>", f"{name} imports the package root"
        assert ORDER.index(other) < rank, f"{name} imports {other}, which comes after it"


@pytest.mark.parametrize("name", ORDER)
def test_heavy_libraries_only_in_the_model_modules(name):
    heavy = {n.split(".")[0] for n in imports(modules()[name])} & HEAVY
    if name not in MODEL_MODULES:
        assert not heavy, f"{name} imports {sorted(heavy)}; only {sorted(MODEL_MODULES)} may"


def test_the_cli_and_the_api_start_without_torch():
    code = (
        "import sys, inpaint_aug, inpaint_aug.cli, inpaint_aug.inspect.validate;"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_rule_catches_a_backward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from inpaint_aug.pipeline.run import run\nimport torch\n")
    assert internal(imports(bad)) == {"pipeline.run"}
    assert {n.split(".")[0] for n in imports(bad)} & HEAVY == {"torch"}
