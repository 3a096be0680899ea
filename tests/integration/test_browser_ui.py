"""The Configure button in a real browser: headless Chromium drives the Airflow UI of real services.

Debian's ``chromium`` (installed by ``make test``'s set-up, never by this test), driven by Playwright's
Python package through ``executable_path``: no browser download. On the local stack with the sample data, the
tenant is connected through the REST API; then, in the browser, a user logs in, opens
``rs2gcs_configure``, fills its trigger form (tables one per line, syncFrequency picked by its label
"1 hour" from the dropdown) and triggers it; the run succeeds and the tenant's sync DAG shows up in the
DAG list. A screenshot of every step lands in ``$RS2GCS_ARTIFACTS/browser_ui/`` (default
``tests/artifacts/browser_ui/``); the ones the docs show are also written to ``docs/img/``, so they
match the UI the test saw. Without Chromium it is skipped, with the reason, except in CI
(``CI=true``), where that is a failure.

Selectors follow what a user sees (roles, labels, visible text). The Param fields of the trigger form
are found by their field group's label: Airflow 3.3's form points each ``<label for=...>`` at an id the
text inputs do not carry, so ``get_by_label`` finds only the dropdowns.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from rs2gcs_devstack.sample_data import SCHEMA_SQL, grant_sql
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID

from airflow_rs2gcs.control_dags import CONFIGURE_DAG_ID, CONNECT_DAG_ID, KEEP_FREQUENCY_LABEL
from airflow_rs2gcs.factory import sync_dag_id
from airflow_rs2gcs.schedules import cron_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root (no sandbox), and quiet on a machine with loopback only: without the
# background-networking flags Chromium keeps retrying Google's update and sync endpoints.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]

# The screenshots docs/control-dags-and-ui.md shows: written there, under these names, on every run.
DOCS_IMG = REPO_ROOT / "docs" / "img"
DOCS_SCREENSHOTS = {
    "03-trigger-form": "ui-configure-form.png",
    "04-sync-frequency-dropdown": "ui-sync-frequency-dropdown.png",
    "08-dag-list-sync-dag": "ui-dag-list-sync-dag.png",
}

TENANT_ID = "browser_ui"
BUCKET = "browser-ui-exports"
TABLES = ["public.customers", "public.products"]
FREQUENCY_LABEL = "1 hour"
UI_TIMEOUT_MS = 60_000  # two shared cores: the UI's first render can take a while
SYNC_DAG_WAIT_S = 180


# -- Chromium --------------------------------------------------------------------------------------------
def ensure_chromium() -> Path:
    """Debian's Chromium, which ``make test`` installs; if missing, skip here but fail in CI."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = (
        f"Chromium is not installed ({CHROMIUM} missing): `make test` installs it with apt-get where "
        "apt-get and root are available (see its output)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; in CI the browser test must run", pytrace=False)
    pytest.skip(message)


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Path:
    """The Chromium binary; checked before any service starts, so a skip costs nothing."""
    return ensure_chromium()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where the screenshots go: ``$RS2GCS_ARTIFACTS/browser_ui`` or ``tests/artifacts/browser_ui``."""
    root = Path(os.environ.get("RS2GCS_ARTIFACTS") or REPO_ROOT / "tests" / "artifacts")
    path = root / "browser_ui"
    shutil.rmtree(path, ignore_errors=True)  # only this run's screenshots
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def airflow(chromium, stack) -> Iterator[AirflowServices]:
    """Real services on the session's stack, with the sample data loaded and the tenant connected."""
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    with AirflowServices(stack) as services:
        services.wait_for_dag(CONNECT_DAG_ID)
        run = services.trigger(
            CONNECT_DAG_ID,
            {
                "tenant_id": TENANT_ID,
                "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
                "gcp_conn_id": DEFAULT_GCP_CONN_ID,
                "bucket": BUCKET,
                "prefix": "browser",
            },
        )
        services.wait_for_run(CONNECT_DAG_ID, run["dag_run_id"])
        assert tenant_entry(services)["status"] == "connected"
        services.wait_for_dag(CONFIGURE_DAG_ID)
        yield services


@pytest.fixture
def browser(chromium: Path) -> Iterator[Browser]:
    """Debian's Chromium under Playwright (``executable_path``: Playwright downloads no browser)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, artifacts: Path) -> Iterator[Page]:
    """A fresh page; its last state is saved as ``99-last.png`` whatever the outcome (for failures)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        with contextlib.suppress(PlaywrightError):  # never hide the test's own error
            page.screenshot(path=artifacts / "99-last.png", full_page=True)
        context.close()


# -- helpers ---------------------------------------------------------------------------------------------
def tenant_entry(airflow: AirflowServices) -> dict:
    """The tenant's entry of the ``rs2gcs_tenants`` Variable, read through the REST API."""
    return json.loads(airflow.api.get("variables/rs2gcs_tenants")["value"])[TENANT_ID]


def param_field(scope: Locator, title: str) -> Locator:
    """The trigger form's field group whose label is ``title`` (with or without the required mark)."""
    label = scope.page.locator("label", has_text=re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$"))
    return scope.get_by_role("group").filter(has=label)


def shoot(page: Page, artifacts: Path, name: str) -> None:
    """Save the viewport (what a user sees right now, dialogs included) as ``<name>.png``; the
    screenshots the docs show are copied to ``docs/img/`` under their names there."""
    page.screenshot(path=artifacts / f"{name}.png")
    if name in DOCS_SCREENSHOTS:
        shutil.copyfile(artifacts / f"{name}.png", DOCS_IMG / DOCS_SCREENSHOTS[name])


def log_in(page: Page, airflow: AirflowServices, path: str, artifacts: Path) -> None:
    """Open ``path``, get sent to the login form, sign in and land back on ``path``."""
    page.goto(f"{airflow.base_url}{path}")
    expect(page.get_by_role("heading", name="Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill(airflow.username)
    page.get_by_label("Password").fill(airflow.password)
    shoot(page, artifacts, "01-login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")


def find_in_dag_list(page: Page, airflow: AirflowServices, dag_id: str) -> None:
    """Search the DAG list for ``dag_id`` until it is the one match (the dag-processor parses every 5 s)."""
    deadline = time.monotonic() + SYNC_DAG_WAIT_S
    while True:
        page.goto(f"{airflow.base_url}/dags")
        page.get_by_placeholder(re.compile("^Search Dags")).fill(dag_id)
        try:
            # The count, not just the link: before the search answers, the unfiltered list shows.
            expect(page.get_by_text(re.compile(r"^1 Dag$"))).to_be_visible(timeout=10_000)
            expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{dag_id} not in the DAG list after {SYNC_DAG_WAIT_S}s; dag-processor log:\n"
                    f"{airflow.children['dag-processor'].log_tail(40)}"
                ) from None


# -- the test --------------------------------------------------------------------------------------------
def test_configure_from_the_ui_creates_the_sync_dag(airflow: AirflowServices, page: Page, artifacts: Path):
    log_in(page, airflow, f"/dags/{CONFIGURE_DAG_ID}", artifacts)
    expect(page.get_by_role("heading", name=CONFIGURE_DAG_ID)).to_be_visible()
    shoot(page, artifacts, "02-configure-dag")

    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_role("heading", name=re.compile(f"Trigger Dag - +{CONFIGURE_DAG_ID}"))).to_be_visible()
    param_field(form, "Tenant id").get_by_role("textbox").fill(TENANT_ID)
    param_field(form, "Tables").get_by_role("textbox").fill("\n".join(TABLES))
    shoot(page, artifacts, "03-trigger-form")

    # The dropdown shows the options table's labels, in its order; the user picks one by its label.
    form.get_by_role("combobox", name="Sync frequency").click()
    expect(page.get_by_role("option")).to_have_text(
        [
            KEEP_FREQUENCY_LABEL,  # empty: a reconfigure keeps the stored frequency
            "5 minutes",
            "15 minutes",
            "1 hour",
            "1 day",
            "1 week (Mondays)",
            "1 month (1st day)",
            "Manual only (no schedule)",
        ]
    )
    shoot(page, artifacts, "04-sync-frequency-dropdown")
    page.get_by_role("option", name=FREQUENCY_LABEL, exact=True).click()
    submit = form.get_by_role("button", name="Trigger", exact=True)
    submit.scroll_into_view_if_needed()
    expect(param_field(form, "Sync frequency")).to_contain_text(FREQUENCY_LABEL)
    expect(submit).to_be_enabled()  # optional fields left empty must not block the form
    shoot(page, artifacts, "05-trigger-form-filled")

    with page.expect_response(lambda r: r.url.endswith(f"/dags/{CONFIGURE_DAG_ID}/dagRuns")) as posted:
        submit.click()
    assert posted.value.ok, posted.value.text()
    run = posted.value.json()
    assert run["conf"]["syncFrequency"] == "hourly"  # the form sends the value behind the label
    assert run["conf"]["tables"] == TABLES and run["conf"]["tenant_id"] == TENANT_ID
    expect(page.get_by_text("Dag run has been successfully triggered.").first).to_be_visible()
    page.wait_for_url(re.compile(r"/runs/"))
    shoot(page, artifacts, "06-run-triggered")

    airflow.wait_for_run(CONFIGURE_DAG_ID, run["dag_run_id"], timeout=300)
    page.reload()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    shoot(page, artifacts, "07-run-succeeded")

    entry = tenant_entry(airflow)
    assert entry["status"] == "configured" and entry["syncFrequency"] == "hourly"
    assert [table["name"] for table in entry["tables"]] == TABLES

    dag_id, cron = sync_dag_id(TENANT_ID), cron_for(TENANT_ID, "hourly")
    find_in_dag_list(page, airflow, dag_id)
    expect(page.get_by_text(cron).first).to_be_visible()  # the card's Schedule: hourly, staggered
    expect(page.get_by_text(f"tenant:{TENANT_ID}")).to_be_visible()  # a real sync DAG, no placeholder
    shoot(page, artifacts, "08-dag-list-sync-dag")

    page.get_by_role("link", name=dag_id, exact=True).click()
    expect(page.get_by_role("heading", name=dag_id)).to_be_visible()
    expect(page.get_by_text(cron).first).to_be_visible()
    # Active from the start: its schedule runs without anyone unpausing it.
    expect(page.get_by_test_id("toggle-pause").get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_text("Failed Runs")).to_be_visible()  # the overview has loaded
    shoot(page, artifacts, "09-sync-dag")
