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
    "__init__": {"cli", "layers", "losses", "metrics", "models", "physics", "stencil", "training",
                 "unet"},
    "protocols": set(),
    "checks": set(),
    "files": set(),
    "stencil": {"checks"},
    "spectral": {"checks"},
    "physics": {"checks", "protocols", "spectral", "stencil"},
    "problems": {"checks", "physics", "protocols"},
    "precision": {"checks"},
    "spec": {"checks", "losses", "precision", "problems", "protocols"},
    "baselines": {"metrics", "physics", "problems", "spectral"},
    "synthetic": {"checks", "protocols"},
    "stl10": {"checks", "protocols", "synthetic"},
    "pair_cache": {"checks", "files", "protocols"},
    "image_folder": {"checks", "image_io", "protocols", "synthetic"},
    "pairs": {"checks", "files", "image_folder", "pair_cache", "physics", "problems",
              "protocols", "stl10", "synthetic"},
    "pipeline": {"checks", "protocols"},
    "layers": {"checks", "protocols", "stencil"},
    "unet": {"checks", "protocols"},
    "models": {"checks", "layers", "presets", "protocols", "unet"},
    "losses": {"distribution"},
    "distribution": {"checks"},
    "metrics": {"checks"},
    "analysis": {"checks", "metrics"},
    "plotting": {"analysis", "files"},
    "event_files": {"checks", "files"},
    "panels": {"analysis", "checks", "plotting"},
    "summaries": {"checks", "event_files", "panels"},
    "saving": {"files"},
    "presets": {"files", "saving"},
    "backup": {"files"},
    "training": {"backup", "distribution", "losses", "metrics", "models", "pipeline", "precision",
                 "protocols"},
    "hardware": set(),
    "runs": {"backup", "baselines", "files", "folder_lock", "hardware", "pairs", "saving", "spec",
             "summaries", "training"},
    "folder_lock": {"files"},
    # the launcher (diffnet_tf/launch/): 'launch' is an import of the package's own modules
    "launch/__init__": set(),
    "launch/worker": {"files", "runs"},
    "launch/launcher": {"launch", "pair_cache", "pairs", "runs"},
    "launch/local": set(),
    "launch/ray_tasks": {"launch"},
    "launch/slurm_jobs": {"launch"},
    "run_figures": {"baselines", "files", "metrics", "plotting", "precision", "problems",
                    "protocols", "spec"},
    "png16": set(),
    "tiff": set(),
    "image_io": {"files", "png16", "tiff"},
    "restoration": {"models", "unet"},
}
KERAS_ONLY = ["stencil", "layers", "models", "unet", "physics", "spectral", "metrics", "losses",
              "training", "backup"]


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


def library_module(path):
    """A module's key in ALLOWED_IMPORTS: 'runs', 'launch/worker'."""
    return path.relative_to(PACKAGE).with_suffix("").as_posix()


@pytest.mark.parametrize("path", sorted([*PACKAGE.glob("*.py"), *PACKAGE.glob("launch/*.py")]),
                         ids=library_module)
def test_imports_follow_the_data_flow(path):
    module = library_module(path)
    assert module in ALLOWED_IMPORTS, f"{module} is new: add its allowed imports here"
    forbidden = package_imports(path) - ALLOWED_IMPORTS[module]
    assert not forbidden, f"{path.name} imports {sorted(forbidden)} against DESIGN.md's data flow"


@pytest.mark.parametrize("module", KERAS_ONLY)
def test_library_modules_use_only_keras_ops(module):
    source = (PACKAGE / f"{module}.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|jax|torch)\b", source, re.M)
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert not names & {"tf", "tensorflow", "jax", "jnp", "torch"}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "layers.py"
    bad.write_text("from diffnet_tf import pairs\nimport diffnet_tf.training\n")
    assert package_imports(bad) == {"pairs", "training"}


# ---------------------------------------------------------------- size, layout, printing

DESIGN = ROOT / "docs" / "DESIGN.md"
MAX_LINES = 300  # DESIGN.md: split a module past ~300 lines, along a concept


def source_modules(root=ROOT):
    """Every Python module of the library and the programs, as paths relative to `root`."""
    return sorted(p.relative_to(root).as_posix() for folder in ("diffnet_tf", "experiments")
                  for p in (root / folder).rglob("*.py"))


def design_layout(text):
    """The module paths DESIGN.md's layout block lists: a name ending in '/' opens a folder
    for the lines indented below it; a name ending in '.py' is a module of that folder."""
    block = re.search(r"## Layout\n```\n(.*?)```", text, re.S)
    assert block, "DESIGN.md has no '## Layout' code block"
    listed, folders = set(), []  # folders: (indent, path) of the open folders
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent, name = len(line) - len(line.lstrip()), line.split()[0]
        folders = [(i, f) for i, f in folders if i < indent]
        path = "/".join([f for _, f in folders] + [name.rstrip("/")])
        if name.endswith("/"):
            folders.append((indent, name.rstrip("/")))
        elif name.endswith(".py"):
            listed.add(path)
    return listed


def long_module_reasons(text):
    """{module path: reason} from DESIGN.md's list of the modules allowed past MAX_LINES."""
    section = re.search(r"## Modules past 300 lines\n(.*?)(\n## |\Z)", text, re.S)
    return dict(re.findall(r"^- `([\w/]+\.py)`: (.+)$", section.group(1), re.M)) if section else {}


def test_design_lists_every_module_and_nothing_else():
    listed, present = design_layout(DESIGN.read_text()), set(source_modules())
    assert not present - listed, f"modules missing from DESIGN.md's layout: {sorted(present - listed)}"
    assert not listed - present, f"DESIGN.md lists modules that do not exist: {sorted(listed - present)}"


def test_the_layout_reader_sees_a_module_added_without_it(tmp_path):
    for path in ("diffnet_tf/cli/flags.py", "diffnet_tf/new.py", "experiments/run.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    text = "## Layout\n```\ndiffnet_tf/\n  cli/        the programs\n    flags.py  flags\nexperiments/\n  run.py  x\n```\n"
    assert set(source_modules(tmp_path)) - design_layout(text) == {"diffnet_tf/new.py"}


@pytest.mark.parametrize("path", source_modules())
def test_modules_stay_short_unless_design_says_why(path):
    lines = len((ROOT / path).read_text().splitlines())
    reasons = long_module_reasons(DESIGN.read_text())
    assert lines <= MAX_LINES or path in reasons, (
        f"{path} has {lines} lines (> {MAX_LINES}): split it along a concept, or say why in "
        "DESIGN.md's 'Modules past 300 lines'")


def print_calls(tree):
    """Line numbers of calls to print()."""
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]


LIBRARY_MODULES = [p for p in source_modules() if p.startswith("diffnet_tf/")
                   and not p.startswith("diffnet_tf/cli/")]


@pytest.mark.parametrize("path", LIBRARY_MODULES)
def test_the_library_does_not_print(path):
    """The library returns values and reports progress through logging or callbacks; the
    programs (diffnet_tf/cli/, experiments/) print."""
    assert print_calls(ast.parse((ROOT / path).read_text())) == [], f"{path} prints"


def test_the_print_checker_sees_a_print():
    assert print_calls(ast.parse('"""print(1) in a docstring"""\ndef f():\n    print(2)\n')) == [3]


# ---------------------------------------------------------------- experiments

CLI = PACKAGE / "cli"
FLAG_TABLE = CLI / "flag_table.py"
# What a program (a module with a main) may import at module level: the standard library,
# absl and the command-line package (its flags, start-up, report). The rest of the library
# comes inside main, the one place a program's work is done.
PROGRAM_TOP_LEVEL = ("absl", "diffnet_tf.cli")


def defines_main(path):
    return any(isinstance(n, ast.FunctionDef) and n.name == "main"
               for n in ast.parse(path.read_text()).body)


def program_modules():
    """The programs: the modules of experiments/ and diffnet_tf/cli/ that define main."""
    return sorted(path for path in [*EXPERIMENTS.glob("*.py"), *CLI.glob("*.py")]
                  if defines_main(path))


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


def flag_definitions(tree):
    """Line numbers of absl flag definitions (DEFINE_*, as a name or an attribute)."""
    return sorted(node.lineno for node in ast.walk(tree)
                  if (isinstance(node, ast.Attribute) and node.attr.startswith("DEFINE"))
                  or (isinstance(node, ast.Name) and node.id.startswith("DEFINE"))
                  or (isinstance(node, ast.alias) and node.name.startswith("DEFINE")))


def top_level_imports(tree):
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{a.name}" if node.module == "experiments" else node.module
                      for a in node.names]
    return names


def test_there_are_programs():
    assert {p.stem for p in program_modules()} >= {
        "perona_malik", "deconvolution", "generalisation", "interpretation", "colour",
        "build_presets", "restore", "benchmark"}


@pytest.mark.parametrize("path", program_modules(), ids=lambda p: p.stem)
def test_flags_are_read_only_inside_main(path):
    assert flag_reads_outside_main(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", sorted(p for folder in (PACKAGE, EXPERIMENTS, ROOT / "tests")
                                        for p in folder.rglob("*.py") if p != FLAG_TABLE),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_flag_is_defined_outside_the_flag_table(path):
    """Every flag of every program is defined once, in diffnet_tf/cli/flag_table.py."""
    assert flag_definitions(ast.parse(path.read_text())) == []


def imports_anywhere(tree):
    """Every module name a source imports, at any depth ('experiments.x' for `from
    experiments import x`)."""
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [f"{n.module}.{a.name}" if n.module == "experiments" else n.module
              for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    return set(names)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.py")), ids=lambda p: p.stem)
def test_no_module_of_experiments_imports_a_program(path):
    """Programs, and the helpers they share (benchmarking, ...): a program's flags never
    reach another program, not even through a helper."""
    programs = {f"experiments.{p.stem}" for p in program_modules() if p.parent == EXPERIMENTS}
    imported = imports_anywhere(ast.parse(path.read_text())) & programs
    assert not imported, f"{path.name} imports the experiment program(s) {sorted(imported)}"


@pytest.mark.parametrize("path", program_modules(), ids=lambda p: p.stem)
def test_programs_import_the_library_only_inside_main(path):
    for name in top_level_imports(ast.parse(path.read_text())):
        assert (name.split(".")[0] in sys.stdlib_module_names
                or any(name == top or name.startswith(f"{top}.") for top in PROGRAM_TOP_LEVEL)
                ), f"{path.name} imports {name} at module level"


def test_the_checkers_see_violations():
    tree = ast.parse(textwrap.dedent("""
        from experiments import cli, perona_malik
        from absl.flags import DEFINE_bool
        import keras
        FLAGS = None
        flags.DEFINE_integer("epochs", 1, "x")
        def helper():
            return FLAGS.noise + FLAGS["epochs"].value
        def main(argv):
            return FLAGS.noise
    """))
    assert flag_reads_outside_main(tree) == [8, 8]
    assert flag_definitions(tree) == [3, 6]
    assert "keras" in top_level_imports(tree) and "experiments.perona_malik" in top_level_imports(tree)
    nested = ast.parse("def helper():\n    from experiments.generalisation import cell_plan\n")
    assert "experiments.generalisation" in imports_anywhere(nested)
