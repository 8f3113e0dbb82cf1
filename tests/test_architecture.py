"""The structural rules of docs/DESIGN.md, enforced: imports flow one way through the
library, layers and models use keras.ops only, and the experiments read their flags only
in main, never import each other, and import the library only inside main."""

import ast
import pathlib
import re
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "diffnet_tf"
EXPERIMENTS = ROOT / "experiments"

# What each module may import from diffnet_tf (docs/DESIGN.md, "Data flow").
ALLOWED_IMPORTS = {
    "__init__": {"layers", "metrics", "models", "physics", "stencil", "training"},
    "protocols": set(),
    "checks": set(),
    "files": set(),
    "stencil": {"checks"},
    "physics": {"checks", "protocols", "stencil"},
    "problems": {"checks", "physics"},
    "spec": {"checks", "problems", "protocols"},
    "synthetic": {"checks", "protocols"},
    "datasets": {"checks", "files", "physics", "problems", "protocols", "synthetic"},
    "layers": {"checks", "protocols", "stencil"},
    "models": {"checks", "layers", "presets", "protocols", "stencil"},
    "metrics": {"checks"},
    "analysis": {"checks", "metrics"},
    "plotting": {"analysis"},
    "summaries": {"analysis"},
    "saving": {"files"},
    "presets": {"files", "saving"},
    "training": {"checks", "datasets", "files", "metrics", "models"},
    "runs": {"datasets", "files", "saving", "spec", "summaries", "training"},
    "figures": {"metrics", "plotting", "problems", "spec"},
    "png16": set(),
    "image_io": {"png16"},
    "restoration": {"models"},
}
KERAS_ONLY = ["stencil", "layers", "models", "physics", "metrics", "training"]
# What an experiment module (one with a main) may import at module level: the standard
# library, absl and the shared command-line module. The library comes inside main, after
# cli.start has set the process up (TensorFlow logs as it is imported).
EXPERIMENT_TOP_LEVEL = {"absl", "experiments.cli"}


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
def test_library_modules_use_only_keras_ops(module):
    source = (PACKAGE / f"{module}.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", source, re.M)
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert not names & {"tf", "tensorflow", "jax", "jnp", "torch"}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "layers.py"
    bad.write_text("from diffnet_tf import datasets\nimport diffnet_tf.training\n")
    assert package_imports(bad) == {"datasets", "training"}


# ---------------------------------------------------------------- experiments


def experiment_modules():
    """The experiment programs: modules of experiments/ that define main."""
    return sorted(path for path in EXPERIMENTS.glob("*.py")
                  if any(isinstance(n, ast.FunctionDef) and n.name == "main"
                         for n in ast.parse(path.read_text()).body))


def flag_reads_outside_main(tree):
    """Line numbers where FLAGS is read (FLAGS.x, FLAGS[...], FLAGS(...)) outside main."""
    inside_main = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            inside_main.update(id(n) for n in ast.walk(node))
    reads = []
    for node in ast.walk(tree):
        target = (node.value if isinstance(node, (ast.Attribute, ast.Subscript)) else
                  node.func if isinstance(node, ast.Call) else None)
        if isinstance(target, ast.Name) and target.id == "FLAGS" and id(node) not in inside_main:
            reads.append(node.lineno)
    return reads


def top_level_imports(tree):
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{a.name}" if node.module == "experiments" else node.module
                      for a in node.names]
    return names


def test_there_are_experiment_programs():
    assert {p.stem for p in experiment_modules()} >= {
        "perona_malik", "deconvolution", "generalisation", "interpretation", "restore",
        "benchmark"}


@pytest.mark.parametrize("path", experiment_modules(), ids=lambda p: p.stem)
def test_flags_are_read_only_inside_main(path):
    assert flag_reads_outside_main(ast.parse(path.read_text())) == []


def imports_anywhere(tree):
    """Every module name a source imports, at any depth ('experiments.x' for `from
    experiments import x`)."""
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [f"{n.module}.{a.name}" if n.module == "experiments" else n.module
              for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    return set(names)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.py")), ids=lambda p: p.stem)
def test_no_module_of_experiments_imports_a_program(path):
    """Programs, and the helpers they share (cli, benchmarking, ...): a program's flags
    never reach another program, not even through a helper."""
    programs = {f"experiments.{p.stem}" for p in experiment_modules()}
    imported = imports_anywhere(ast.parse(path.read_text())) & programs
    assert not imported, f"{path.name} imports the experiment program(s) {sorted(imported)}"


@pytest.mark.parametrize("path", experiment_modules(), ids=lambda p: p.stem)
def test_programs_import_the_library_only_inside_main(path):
    tree = ast.parse(path.read_text())
    for name in top_level_imports(tree):
        root = name.split(".")[0]
        assert (name in EXPERIMENT_TOP_LEVEL or root in EXPERIMENT_TOP_LEVEL
                or root in sys.stdlib_module_names), f"{path.name} imports {name} at module level"


def test_the_checkers_see_violations():
    tree = ast.parse(textwrap.dedent("""
        from experiments import cli, perona_malik
        import keras
        FLAGS = None
        def helper():
            return FLAGS.noise + FLAGS["epochs"].value
        def main(argv):
            return FLAGS.noise
    """))
    assert flag_reads_outside_main(tree) == [6, 6]
    assert "keras" in top_level_imports(tree) and "experiments.perona_malik" in top_level_imports(tree)
    nested = ast.parse("def helper():\n    from experiments.generalisation import cell_plan\n")
    assert "experiments.generalisation" in imports_anywhere(nested)
