"""The provider declares every library its code imports, not only what Airflow's providers happen to
bring: each import in airflow_rs2gcs/ resolves, through the installed distributions' file lists, to a
distribution named in pyproject.toml's ``dependencies`` (or a part of the ``apache-airflow`` meta
package), or of an optional extra (``openlineage``) when every such import is inside a function, so the
provider works, and a DAG parses, without it."""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "airflow_rs2gcs"
META_PACKAGE = "apache-airflow"  # installs apache-airflow-core and apache-airflow-task-sdk
OPTIONAL_EXTRAS = ("openlineage",)  # imported only inside functions


def imported_modules() -> dict[str, set[str]]:
    """Every absolute module name imported in the package (also inside functions) -> the files."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def module_level_imports(path: Path) -> set[str]:
    """The absolute module names ``path`` imports outside functions (``if TYPE_CHECKING:`` excepted)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
            elif isinstance(node, ast.If) and ast.unparse(node.test) != "TYPE_CHECKING":
                visit(node.body + node.orelse)
            elif isinstance(node, ast.ClassDef | ast.Try | ast.With):
                visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])

    visit(ast.parse(path.read_text(), str(path)).body)
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        name: files
        for name, files in modules.items()
        if name.split(".")[0] not in sys.stdlib_module_names | {"__future__", PACKAGE.name}
    }


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return packages_distributions()


@cache
def _files(dist_name: str) -> frozenset[str]:
    return frozenset(str(f).replace("\\", "/") for f in distribution(dist_name).files or ())


def owning_distribution(module: str) -> str | None:
    """The installed distribution that holds ``module``'s file (namespace packages such as ``airflow``
    and ``google`` are spread over many)."""
    candidates = _top_level_owners().get(module.split(".")[0], [])
    if len(set(candidates)) == 1:
        return canonicalize_name(candidates[0])
    stem = module.replace(".", "/")
    wanted = {f"{stem}.py", f"{stem}/__init__.py"}
    owners = {canonicalize_name(d) for d in candidates if wanted & _files(d)}
    return owners.pop() if len(owners) == 1 else None


def optional() -> set[str]:
    """The distributions of the optional extras, which the provider imports lazily."""
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {canonicalize_name(Requirement(r).name) for extra in OPTIONAL_EXTRAS for r in extras[extra]}


def declared() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    if META_PACKAGE in names:
        parts = (Requirement(r) for r in distribution(META_PACKAGE).requires or ())
        names |= {canonicalize_name(r.name) for r in parts if r.marker is None}
    return names


def test_the_import_scan_sees_lazy_imports_and_skips_the_standard_library():
    modules = third_party(imported_modules())
    assert "redshift_connector" in modules  # imported inside a function in engine/wire.py
    assert "json" not in modules and not any(name.startswith(PACKAGE.name) for name in modules)


def test_every_library_the_provider_imports_is_a_declared_dependency():
    allowed = declared() | optional()
    missing = {}
    for module, files in third_party(imported_modules()).items():
        owner = owning_distribution(module)
        if owner not in allowed:
            missing[module] = (owner, sorted(files))
    assert not missing, f"imported but not in pyproject.toml's dependencies (module: owner, files): {missing}"


def test_the_provider_never_imports_the_local_stack():
    """rs2gcs_devstack is installed next to the provider in development only (the dev extra)."""
    local_stack = {m: f for m, f in imported_modules().items() if m.split(".")[0] == "rs2gcs_devstack"}
    assert not local_stack, f"the provider imports the local stack: {local_stack}"


def test_the_optional_extras_are_imported_only_inside_functions():
    """Without the openlineage extra the operators still run, and no DAG parse loads it."""
    assert "apache-airflow-providers-openlineage" in optional()
    eager = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in third_party({m: set() for m in module_level_imports(path)}):
            owner = owning_distribution(module)
            if owner in optional() - declared():
                eager.setdefault(str(path.relative_to(REPO_ROOT)), []).append(module)
    assert not eager, f"optional libraries imported at module level: {eager}"


def test_the_module_level_scan_skips_function_bodies_and_type_checking_blocks():
    lineage = module_level_imports(PACKAGE / "transfers" / "lineage.py")
    assert "airflow_rs2gcs.engine.paths" in lineage
    assert not any("openlineage" in m for m in lineage)
    for module in ("redshift_to_gcs.py", "redshift_tables_to_gcs.py"):
        operator = module_level_imports(PACKAGE / "transfers" / module)
        assert "airflow.sdk" in operator and "airflow.providers.amazon.aws.hooks.redshift_sql" not in operator
        # The lineage module too is loaded when a task runs, never by a DAG parse.
        assert "airflow_rs2gcs.transfers.lineage" not in operator
