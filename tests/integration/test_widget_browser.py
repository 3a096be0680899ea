"""The Redshift → GCS page as a person uses it: headless Chromium inside Airflow's UI, on real services.

One stack for the module (api-server, scheduler, dag-processor; LocalExecutor) and a catalog of 251
relations in PostgreSQL (the Redshift stand-in): 230 tables, 20 views and ``wcat."Mixed Case Table"``.
In the browser a user logs in, opens **Redshift → GCS** from Airflow's navigation (the page is in an
iframe), then: New tenant → Connect (connections from the dropdowns, bucket, prefix, a signed webhook
on a real HTTP server) → "Activation successful for redshift_to_gcs" and the buttons Configure +
Disconnect; Configure, ticking tables on catalog pages 1 and 2 (the quoted-name one incremental, its
cursor column picked from its columns), adding a custom query, "1 hour" → the success message and the
Sync button; Sync now (full refresh) → per-table rows equal to ``count(*)`` in PostgreSQL, and the
same rows in the webhook's signed deliveries; the tenant list, in Airflow's dark mode too; the run
history (table and chart); Sync of one table only; Configure prefilled with what was saved; Disconnect
through its dialog → "Deactivation completed for <tenant>" and only Connect left; Connect again,
prefilled from the last connection, asking for the signing secret that was not kept, then failing on a
missing bucket with the run's exact error; "open in Airflow" leaves the iframe for the run's page; an
ended session shows the page's banner, whose link leaves the iframe too.

A screenshot of every step (the whole Airflow window) lands in ``$RS2GCS_ARTIFACTS/widget_browser/``
(default ``tests/artifacts/widget_browser/``); those the docs show are copied to ``docs/img/``
(``widget-*.png``). Without Chromium it is skipped, except in CI, as in test_browser_ui.py.
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
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID
from test_browser_ui import CHROMIUM_ARGS, ensure_chromium

from airflow_rs2gcs.control_dags import CONFIGURE_DAG_ID, CONNECT_DAG_ID, DISCONNECT_DAG_ID
from airflow_rs2gcs.factory import redshift_pool
from airflow_rs2gcs.webhooks import SIGNATURE_HEADER, sign

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO_ROOT / "docs" / "img"
DOCS_SCREENSHOTS = {
    "04-connect-form": "widget-connect-form.png",
    "05-connected": "widget-connected.png",
    "07-configure-page-2": "widget-configure-picker.png",
    "08-configure-query-frequency": "widget-configure-frequency.png",
    "09-configured": "widget-configured.png",
    "11-synced": "widget-sync-outcome.png",
    "12-tenant-list-synced": "widget-tenant-list.png",
    "12b-history": "widget-run-history.png",
    "13-disconnect-dialog": "widget-disconnect-dialog.png",
    "14-disconnected": "widget-disconnected.png",
    "12c-dark": "widget-dark.png",
    "12d-sync-some": "widget-sync-some.png",
    "15-reconnect-form": "widget-reconnect-form.png",
    "16-reconnect-failed": "widget-reconnect-failed.png",
}

TENANT_ID = "widget_acme"
BUCKET = "widget-browser"
PREFIX = "widget"
SCHEMA = "wcat"
TABLES, VIEWS = 230, 20
MIXED = f'{SCHEMA}."Mixed Case Table"'
PAGE_1_TABLE = f"{SCHEMA}.t000"  # the catalog's first page (ordered by schema, name)
PAGE_2_TABLE = f"{SCHEMA}.t150"  # only on its second page
QUERY_NAME = "small_ids"
QUERY_SQL = f"select id, label from {SCHEMA}.t000 where id <= 4"
WEBHOOK_ID = "wh_page"
WEBHOOK_SECRET = "whsec-widget-7c1e"
MISSING_BUCKET = "widget-no-such-bucket"
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 240_000  # a run on two shared cores: queued, scheduled, executed, followed


def catalog_sql(role: str) -> str:
    """251 relations in one schema; three tables and the quoted-name table hold rows."""
    return f"""
    DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
    DO $$ BEGIN
      FOR i IN 0..{TABLES - 1} LOOP
        EXECUTE format('CREATE TABLE {SCHEMA}.t%s (id int, label text)', lpad(i::text, 3, '0'));
      END LOOP;
      FOR i IN 0..{VIEWS - 1} LOOP
        EXECUTE format('CREATE VIEW {SCHEMA}.v%s AS SELECT 1 AS x', lpad(i::text, 2, '0'));
      END LOOP;
    END $$;
    INSERT INTO {SCHEMA}.t000 SELECT g, 'row ' || g FROM generate_series(1, 9) g;
    INSERT INTO {SCHEMA}.t150 SELECT g, NULL FROM generate_series(1, 17) g;
    CREATE TABLE {MIXED} (id int, label text, updated_at timestamp);
    INSERT INTO {MIXED} VALUES (1, 'a', '2026-01-01'), (2, 'b, "quoted"', '2026-01-02'), (3, NULL, NULL);
    GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}";
    GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO "{role}";
    """


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    root = Path(os.environ.get("RS2GCS_ARTIFACTS") or REPO_ROOT / "tests" / "artifacts")
    path = root / "widget_browser"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def airflow(chromium, stack) -> Iterator[AirflowServices]:
    stack.postgres.psql(catalog_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    with AirflowServices(stack) as services:
        services.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), 4)
        for dag_id in (CONNECT_DAG_ID, CONFIGURE_DAG_ID, DISCONNECT_DAG_ID):
            services.wait_for_dag(dag_id)
        yield services


@pytest.fixture(scope="module")
def receiver() -> Iterator[HTTPServer]:
    """The tenant's webhook endpoint: a real HTTP server on loopback."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def page(chromium: Path, airflow: AirflowServices, artifacts: Path) -> Iterator[Page]:
    """One browser page for the module's steps; its last state is saved as ``99-last.png``."""
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        try:
            yield page
        finally:
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=artifacts / "99-last.png")
            browser.close()


# -- helpers ---------------------------------------------------------------------------------------------
def shoot(page: Page, artifacts: Path, name: str) -> None:
    """The whole Airflow window (the page inside its iframe); docs screenshots go to docs/img too."""
    page.screenshot(path=artifacts / f"{name}.png")
    if name in DOCS_SCREENSHOTS:
        shutil.copyfile(artifacts / f"{name}.png", DOCS_IMG / DOCS_SCREENSHOTS[name])


def widget(page: Page) -> FrameLocator:
    return page.frame_locator("iframe")


def is_dark(css_color: str) -> bool:
    """Whether a computed ``rgb(r, g, b)`` colour is dark (relative luminance below one half)."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128


def row_count(airflow: AirflowServices, sql: str) -> int:
    postgres = airflow.stack.postgres
    return int(postgres.psql(f"select count(*) from ({sql}) q", database=postgres.database).strip())


def expect_buttons(frame: FrameLocator, names: list[str]) -> None:
    expect(frame.get_by_role("group", name="Actions").get_by_role("button")).to_have_text(names)


def run_card(frame: FrameLocator) -> Locator:
    """The card where the page follows the run a button started (its message or its error)."""
    return frame.get_by_role("region", name="Last action")


def log_in_and_open(page: Page, airflow: AirflowServices, artifacts: Path) -> None:
    """Sign in on Airflow's form, then open the page from the navigation (beside Dags, Assets ...)."""
    page.goto(airflow.base_url)
    expect(page.get_by_role("heading", name="Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill(airflow.username)
    page.get_by_label("Password").fill(airflow.password)
    shoot(page, artifacts, "01-login")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("nav-sidebar").get_by_role("link", name=re.compile("^Redshift")).click()
    page.wait_for_url(re.compile(r"/plugin/rs2gcs"))


# -- the test --------------------------------------------------------------------------------------------
def deliveries(receiver: HTTPServer, count: int, timeout: float = 60.0) -> list[dict]:
    """The deliveries the webhook received, once ``count`` have arrived, each signature checked.

    The hourly schedule may add a run of its own beside the page's (right after Configure, or at the top
    of an hour), so callers look for their run's payloads among them rather than count them exactly.
    """
    deadline = time.monotonic() + timeout
    while len(receiver.log) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    posts = [request for request, _ in receiver.log]
    for request in posts:
        assert request.headers[SIGNATURE_HEADER] == sign(request.get_data(), WEBHOOK_SECRET)
    return [json.loads(request.get_data()) for request in posts]


def test_a_person_connects_configures_syncs_and_disconnects_a_tenant(
    airflow: AirflowServices, page: Page, artifacts: Path, receiver: HTTPServer
):
    # The page runs under its Content-Security-Policy: the browser reports any violation on the console.
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    with page.expect_response(re.compile(r"/rs2gcs/$")) as served:
        # Log in and open the page from Airflow's navigation.
        log_in_and_open(page, airflow, artifacts)
    assert "default-src 'self'" in (served.value.header_value("content-security-policy") or "")
    frame = widget(page)
    expect(frame.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(frame.get_by_text(f"Signed in as {airflow.username}")).to_be_visible()
    shoot(page, artifacts, "02-tenant-list")

    # New tenant → Connect.
    frame.get_by_label("New tenant id").fill(TENANT_ID)
    frame.get_by_role("button", name="New tenant").click()
    expect(frame.get_by_role("heading", name=TENANT_ID, exact=True)).to_be_visible()
    expect_buttons(frame, ["Connect"])
    shoot(page, artifacts, "03-new-tenant")
    frame.get_by_role("button", name="Connect", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Connect {TENANT_ID}")).to_be_visible()
    frame.get_by_label("Redshift connection").select_option(DEFAULT_REDSHIFT_CONN_ID)
    frame.get_by_label("GCP connection").select_option(DEFAULT_GCP_CONN_ID)
    frame.get_by_label("Bucket").fill(BUCKET)
    frame.get_by_label("Prefix").fill(PREFIX)
    frame.get_by_role("button", name="Add webhook").click()
    frame.get_by_label("Webhook URL").fill(receiver.url_for("/hook"))
    frame.get_by_label("Webhook id").fill(WEBHOOK_ID)
    frame.get_by_label("Signing secret").fill(WEBHOOK_SECRET)
    shoot(page, artifacts, "04-connect-form")
    frame.get_by_role("button", name="Save and connect").click()
    card = run_card(frame)
    expect(card.get_by_text("Activation successful for redshift_to_gcs")).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    expect_buttons(frame, ["Configure", "Disconnect"])
    shoot(page, artifacts, "05-connected")

    # Configure: a table on page 1, one on page 2, a custom query, "1 hour".
    frame.get_by_role("button", name="Configure", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Configure {TENANT_ID}")).to_be_visible()
    frame.get_by_label("Search relations").fill(SCHEMA)
    total = TABLES + VIEWS + 1
    status = frame.get_by_text(re.compile(r"shown of"))
    expect(status).to_have_text(f"100 shown of {total} · page 1")
    frame.get_by_label(MIXED, exact=True).check()
    frame.get_by_label(PAGE_1_TABLE, exact=True).check()
    shoot(page, artifacts, "06-configure-page-1")
    frame.get_by_role("button", name="Next page").click()
    expect(status).to_have_text(f"100 shown of {total} · page 2")
    frame.get_by_label(PAGE_2_TABLE, exact=True).check()
    expect(frame.get_by_text("Selected (3)")).to_be_visible()
    # The quoted-name table goes incremental; its cursor column comes from the columns endpoint.
    frame.get_by_label(f"Mode of {MIXED}", exact=True).select_option("incremental")
    frame.get_by_label(f"Cursor column of {MIXED}", exact=True).select_option("updated_at")
    # Its checks: a verified count, and deletes captured with the key picked from its columns.
    frame.get_by_label(f"Verify count of {MIXED}", exact=True).check()
    frame.get_by_label(f"Capture deletes of {MIXED}", exact=True).check()
    frame.get_by_label(f"Primary key columns of {MIXED}", exact=True).select_option(["id"])
    # The data contract of one table: its columns (from the same columns endpoint) exported or not.
    page_1_row = frame.get_by_role("row").filter(has=frame.get_by_role("rowheader", name=PAGE_1_TABLE))
    page_1_row.locator("summary").click()
    frame.get_by_label(f"On schema change of {PAGE_1_TABLE}", exact=True).select_option("fail")
    frame.get_by_label(f"label of {PAGE_1_TABLE}", exact=True).select_option("exclude")
    expect(page_1_row.locator("summary")).to_have_text("fail on change · 1 excluded")
    shoot(page, artifacts, "07-configure-page-2")
    frame.get_by_role("button", name="Add custom query").click()
    frame.get_by_label("Output name").fill(QUERY_NAME)
    frame.get_by_label("Sync Frequency").select_option(label="1 hour")
    # A query that is not one read-only SELECT: the API's 422 is shown beside the SQL field.
    sql = frame.get_by_label("SQL")
    sql.fill(f"delete from {PAGE_1_TABLE}")
    frame.get_by_role("button", name="Save configuration").click()
    expect(sql).to_have_attribute("aria-invalid", "true")
    expect(frame.get_by_text(re.compile("must start with SELECT or WITH"))).to_be_visible()
    shoot(page, artifacts, "08a-configure-query-refused")
    sql.fill(QUERY_SQL)
    shoot(page, artifacts, "08-configure-query-frequency")
    frame.get_by_role("button", name="Save configuration").click()
    expect(card.get_by_text(f"Configuration saved for {TENANT_ID}")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect_buttons(frame, ["Configure", "Sync", "Disconnect"])
    summary = frame.get_by_role("region", name="Configuration")
    expect(summary).to_contain_text("1 hour")
    expect(summary).to_contain_text("Tables (4)")
    expect(summary).to_contain_text("incremental on updated_at")
    shoot(page, artifacts, "09-configured")
    # The contract was stored: the form opened again shows it.
    frame.get_by_role("button", name="Configure", exact=True).click()
    page_1_row = frame.get_by_role("row").filter(has=frame.get_by_role("rowheader", name=PAGE_1_TABLE))
    expect(page_1_row.locator("summary")).to_have_text("fail on change · 1 excluded")
    frame.get_by_role("button", name="Cancel").click()

    # Sync now: per-table rows equal the source's.
    expected = {
        MIXED: row_count(airflow, f"select * from {MIXED}"),
        PAGE_1_TABLE: row_count(airflow, f"select * from {PAGE_1_TABLE}"),
        PAGE_2_TABLE: row_count(airflow, f"select * from {PAGE_2_TABLE}"),
        QUERY_NAME: row_count(airflow, QUERY_SQL),
    }
    frame.get_by_role("button", name="Sync", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Sync {TENANT_ID} now")).to_be_visible()
    frame.get_by_label("Full refresh").check()  # the incremental table whole, not one interval
    shoot(page, artifacts, "10-sync-form")
    frame.get_by_role("button", name="Start sync").click()
    rows_total = sum(expected.values())
    expect(card.get_by_text(re.compile(rf"^Synced 4 table\(s\): {rows_total} rows"))).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    outcome = card.get_by_role("table", name="Tables of this run")
    for table, rows in expected.items():
        line = outcome.get_by_role("row").filter(has=frame.get_by_role("rowheader", name=table, exact=True))
        expect(line.get_by_role("cell").nth(0)).to_have_text("success")
        expect(line.get_by_role("cell").nth(1)).to_have_text(str(rows))
    shoot(page, artifacts, "11-synced")
    # The webhook from the Connect form got one signed delivery per table, with the same rows.
    delivered = deliveries(receiver, len(expected))
    assert {(table, rows) for table, rows in expected.items()} <= {(d["table"], d["rows"]) for d in delivered}
    assert {d["tenant"] for d in delivered} == {TENANT_ID}

    # The tenant list shows the synced tenant: its frequency by label, tables, last sync.
    frame.get_by_role("link", name="← All tenants").click()
    frame.get_by_label("Filter tenants").fill(TENANT_ID)
    line = frame.get_by_role("row").filter(has=frame.get_by_role("link", name=TENANT_ID, exact=True))
    expect(line).to_contain_text("configured")
    expect(line).to_contain_text("1 hour")
    expect(line.get_by_role("cell").nth(5)).to_have_text(str(rows_total))
    shoot(page, artifacts, "12-tenant-list-synced")
    # Airflow in dark mode (it follows the system's scheme): the page follows Airflow's own mode.
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    expect(frame.locator("html")).to_have_attribute("data-theme", "dark")
    assert is_dark(frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor"))
    shoot(page, artifacts, "12c-dark")
    page.emulate_media(color_scheme="light")
    expect(frame.locator("html")).to_have_attribute("data-theme", "light")
    assert not is_dark(frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor"))
    line.get_by_role("link", name=TENANT_ID, exact=True).click()
    expect_buttons(frame, ["Configure", "Sync", "Disconnect"])

    # The run history: the table and the chart show the run.
    history = frame.get_by_role("region", name="Sync history")
    history.scroll_into_view_if_needed()
    expect(history.get_by_role("img", name=re.compile(rf"largest {rows_total} rows"))).to_be_visible()
    runs = history.get_by_role("table", name="Sync runs, newest first")
    success = runs.get_by_role("row").filter(has_text=str(rows_total))
    expect(success.first).to_contain_text("success")
    shoot(page, artifacts, "12b-history")

    # Sync one table only: the run exports that table and nothing else.
    frame.get_by_role("button", name="Sync", exact=True).click()
    frame.get_by_role("group", name="Tables to sync").get_by_label(PAGE_1_TABLE, exact=True).check()
    shoot(page, artifacts, "12d-sync-some")
    frame.get_by_role("button", name="Start sync").click()
    only = expected[PAGE_1_TABLE]
    expect(card.get_by_text(re.compile(rf"^Synced 1 table\(s\): {only} rows"))).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    expect(outcome.get_by_role("rowheader")).to_have_text([PAGE_1_TABLE])
    later = deliveries(receiver, len(delivered) + 1)[len(delivered) :]
    assert {"table": PAGE_1_TABLE, "rows": only} in [{"table": d["table"], "rows": d["rows"]} for d in later]

    # Configure again: prefilled with what was saved.
    frame.get_by_role("button", name="Configure", exact=True).click()
    expect(frame.get_by_text("Selected (3)")).to_be_visible()
    expect(frame.get_by_label("Sync Frequency")).to_have_value("hourly")
    expect(frame.get_by_label("Output name")).to_have_value(QUERY_NAME)
    expect(frame.get_by_label(f"Cursor column of {MIXED}", exact=True)).to_have_value("updated_at")
    expect(frame.get_by_label(f"Verify count of {MIXED}", exact=True)).to_be_checked()
    expect(frame.get_by_label(f"Capture deletes of {MIXED}", exact=True)).to_be_checked()
    expect(frame.get_by_label(f"Primary key columns of {MIXED}", exact=True)).to_have_values(["id"])
    frame.get_by_role("button", name="Cancel").click()
    expect(frame.get_by_role("heading", name=f"Configure {TENANT_ID}")).to_have_count(0)

    # Disconnect through the dialog.
    frame.get_by_role("button", name="Disconnect", exact=True).click()
    dialog = frame.get_by_role("dialog", name=f"Disconnect {TENANT_ID}?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"gs://{BUCKET}/{PREFIX}/")
    shoot(page, artifacts, "13-disconnect-dialog")
    dialog.get_by_role("button", name="Yes, disconnect").click()
    expect(card.get_by_text(f"Deactivation completed for {TENANT_ID}")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect_buttons(frame, ["Connect"])
    expect(frame.get_by_role("region", name="Configuration")).to_contain_text("Disconnected")
    shoot(page, artifacts, "14-disconnected")

    expect(frame.get_by_role("region", name="Configuration")).to_contain_text(f"gs://{BUCKET}/{PREFIX}/")

    # Connect again: the form is prefilled from the last connection; the signing secret was not kept.
    frame.get_by_role("button", name="Connect", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Connect {TENANT_ID}")).to_be_visible()
    expect(frame.get_by_test_id("prefilled-note")).to_contain_text("Prefilled from its last connection")
    expect(frame.get_by_label("Redshift connection")).to_have_value(DEFAULT_REDSHIFT_CONN_ID)
    expect(frame.get_by_label("GCP connection")).to_have_value(DEFAULT_GCP_CONN_ID)
    expect(frame.get_by_label("Bucket")).to_have_value(BUCKET)
    expect(frame.get_by_label("Prefix")).to_have_value(PREFIX)
    expect(frame.get_by_label("Webhook URL")).to_have_value(receiver.url_for("/hook"))
    expect(frame.get_by_label("Webhook id")).to_have_value(WEBHOOK_ID)
    secret = frame.get_by_label("Signing secret")
    expect(secret).to_have_value("")
    frame.get_by_role("button", name="Save and connect").click()
    expect(secret).to_have_attribute("aria-invalid", "true")
    expect(frame.get_by_text("This webhook was signed: give its secret again, or remove it.")).to_be_visible()
    shoot(page, artifacts, "15-reconnect-form")

    # A Connect that fails shows the run's exact error, and the tenant stays disconnected.
    secret.fill(WEBHOOK_SECRET)
    frame.get_by_label("Bucket").fill(MISSING_BUCKET)
    frame.get_by_role("button", name="Save and connect").click()
    failure = card.get_by_role("alert").filter(has_text="Connect failed")
    expect(failure).to_contain_text(MISSING_BUCKET, timeout=RUN_TIMEOUT_MS)
    expect_buttons(frame, ["Connect"])
    shoot(page, artifacts, "16-reconnect-failed")
    assert violations == []

    # A link out of the page (sandboxed iframe: no target=_top) opens the run in Airflow itself.
    card.get_by_role("link", name="open in Airflow").click()
    page.wait_for_url(re.compile(rf"/dags/{CONNECT_DAG_ID}/runs/"))
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    shoot(page, artifacts, "17-run-in-airflow")

    # A session that ends while the page is open: the banner says so, and its link leaves the iframe.
    page.go_back()  # the page again, on its tenant list: the disconnected tenant has no next sync
    frame = widget(page)
    line = frame.get_by_role("row").filter(has=frame.get_by_role("link", name=TENANT_ID, exact=True))
    expect(line.get_by_role("cell").nth(0)).to_have_text("disconnected")
    expect(line.get_by_role("cell").nth(8)).to_have_text("—")
    page.context.clear_cookies()
    line.get_by_role("link", name=TENANT_ID, exact=True).click()
    banner = frame.get_by_role("alert").filter(has_text="Your Airflow session has expired")
    expect(banner).to_be_visible()
    shoot(page, artifacts, "18-session-expired")
    banner.get_by_role("link", name="log in again").click()
    page.wait_for_url(lambda url: "/plugin/" not in url)
