"""The provider declares every library its code imports, not only what Airflow's providers happen to
bring: each import in airflow_rs2gcs/ resolves, through the installed distributions' file lists, to a
distribution named in pyproject.toml's ``dependencies`` (or a part of the ``apache-airflow`` meta
package)."""

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
    allowed = declared()
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
