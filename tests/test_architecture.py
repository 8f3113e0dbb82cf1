"""The package's structural rules from DESIGN.md: backend-agnostic layers and models, and
imports that flow one way."""

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "diffnet_tf"

# What each module may import from diffnet_tf (DESIGN.md, "Data flow").
ALLOWED_IMPORTS = {
    "__init__": {"layers", "metrics", "models", "physics", "stencil", "training"},
    "checks": set(),
    "stencil": {"checks"},
    "physics": {"checks", "stencil"},
    "datasets": {"checks", "physics", "stencil", "synthetic"},
    "synthetic": {"checks"},
    "layers": {"checks", "stencil"},
    "models": {"checks", "layers", "stencil"},
    "training": {"checks", "layers", "models", "stencil", "metrics", "analysis", "plotting",
                 "summaries"},
    "metrics": {"checks"},
    "analysis": {"checks"},
    "plotting": {"checks", "analysis"},
    "summaries": {"analysis"},
}
KERAS_ONLY = ["stencil", "layers", "models"]


def package_imports(path):
    """The diffnet_tf modules a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diffnet_tf"):
            parts = node.module.split(".")
            found.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("diffnet_tf."))
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.stem)
def test_imports_follow_the_data_flow(path):
    assert path.stem in ALLOWED_IMPORTS, f"{path.name} is new: add its allowed imports here"
    forbidden = package_imports(path) - ALLOWED_IMPORTS[path.stem]
    assert not forbidden, f"{path.name} imports {sorted(forbidden)} against DESIGN.md's data flow"


@pytest.mark.parametrize("module", KERAS_ONLY)
def test_layers_and_models_use_only_keras_ops(module):
    source = (PACKAGE / f"{module}.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", source, re.M)
    assert not re.search(r"\btf\.", source)


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "layers.py"
    bad.write_text("from diffnet_tf import datasets\nimport diffnet_tf.training\n")
    assert package_imports(bad) == {"datasets", "training"}
