"""The docs cannot drift from the code: included examples equal their files and run, links resolve.

Every code example of README.md, docs/*.md and bench/README.md that shows Python or JSON lives in
``docs/examples/`` and is shown through a marked block::

    <!-- include: docs/examples/operator_dag.py -->
    ```python
    ...exactly the file's text...
    ```

These tests check that each block equals its file, build or run each example against the real code
(no services, no network, no processes), check every relative link, image and ``#anchor``, and keep
README.md within 8 KB.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
README_MAX_BYTES = 8192

INCLUDE_MARK = re.compile(r"<!-- include: (?P<path>[^\s>]+) -->")
INCLUDE_BLOCK = re.compile(
    r"<!-- include: (?P<path>[^\s>]+) -->\n(?P<fence>`{3,})[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
FENCED = re.compile(r"^(`{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(?P<text>.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _load(path: Path, name: str) -> ModuleType:
    """Import an example file as a module (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dagbag(path: Path) -> dict:
    """The DAGs Airflow's own parser finds in ``path`` (no metadata DB is touched), keyed by id."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}, bag.import_errors
    return dict(bag.dags)


# -- (a) include blocks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc", DOC_FILES, ids=_rel)
def test_include_blocks_equal_their_files(doc: Path):
    text = doc.read_text(encoding="utf-8")
    blocks = list(INCLUDE_BLOCK.finditer(text))
    marks = INCLUDE_MARK.findall(text)
    assert [b["path"] for b in blocks] == marks, (
        f"{_rel(doc)}: every include mark must be followed directly by a fenced code block"
    )
    for block in blocks:
        source = REPO / block["path"]
        assert source.is_file(), f"{_rel(doc)} includes {block['path']}, which does not exist"
        assert block["body"] == source.read_text(encoding="utf-8"), (
            f"{_rel(doc)}: the block under 'include: {block['path']}' differs from the file; copy the file in"
        )


def test_every_example_is_shown_in_the_docs():
    included = {m for doc in DOC_FILES for m in INCLUDE_MARK.findall(doc.read_text(encoding="utf-8"))}
    examples = {_rel(p) for p in EXAMPLES.iterdir() if p.is_file() and p.suffix in {".py", ".json"}}
    assert examples - included == set(), "examples no page shows"


# -- (b) the examples against the code ---------------------------------------------------------------------
def test_operator_dag_example_builds_its_dag():
    from airflow.sdk import Asset, CronDataIntervalTimetable

    from airflow_rs2gcs.engine.paths import dataset_root
    from airflow_rs2gcs.factory import redshift_pool
    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    dags = _dagbag(EXAMPLES / "operator_dag.py")
    assert list(dags) == ["orders_to_gcs"]
    dag = dags["orders_to_gcs"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert [t.task_id for t in dag.tasks] == ["orders"]
    op = dag.get_task("orders")
    assert isinstance(op, RedshiftToGCSOperator)
    assert op.pool == redshift_pool(op.redshift_conn_id)
    # The outlet is the table's Asset: the folder without its Hive partitions.
    assert op.outlets == [Asset(f"gs://{op.bucket}/{dataset_root(op.object_prefix)}")]
    assert op.settings().compression == "zstd"


def test_asset_consumer_example_reads_the_manifest_example(monkeypatch):
    producer = _dagbag(EXAMPLES / "operator_dag.py")["orders_to_gcs"]
    dags = _dagbag(EXAMPLES / "asset_consumer_dag.py")
    assert list(dags) == ["orders_to_bigquery"]
    dag = dags["orders_to_bigquery"]
    assert [t.task_id for t in dag.tasks] == ["objects_to_load"]
    callable_ = dag.get_task("objects_to_load").python_callable
    module = SimpleNamespace(**callable_.__globals__)  # the example file as Airflow loaded it
    assert module.ORDERS in producer.get_task("orders").outlets  # scheduled on what the export emits

    manifest_text = (EXAMPLES / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(manifest_text)
    downloads = []

    class FakeGCSHook:
        def __init__(self, gcp_conn_id: str) -> None:
            pass

        def download(self, bucket_name: str, object_name: str) -> bytes:
            downloads.append((bucket_name, object_name))
            return manifest_text.encode("utf-8")

    monkeypatch.setitem(callable_.__globals__, "GCSHook", FakeGCSHook)
    event = SimpleNamespace(
        extra={"manifest": "gs://demo-exports/redshift/demo/public.orders/x/_manifest.json"}
    )
    uris = callable_(triggering_asset_events={module.ORDERS: [event]})
    assert downloads == [("demo-exports", "redshift/demo/public.orders/x/_manifest.json")]
    assert uris == [f"gs://demo-exports/{o['name']}" for o in manifest["objects"]]


def test_tenants_example_is_a_ready_tenant_with_a_sync_dag():
    from airflow_rs2gcs.factory import build_dags, sync_dag_id
    from airflow_rs2gcs.tenants import parse_tenant

    tenants = json.loads((EXAMPLES / "tenants.json").read_text(encoding="utf-8"))
    for tenant_id, entry in tenants.items():
        assert parse_tenant(tenant_id, entry).is_ready, tenant_id
    dags = build_dags(tenants)
    assert sorted(dags) == sorted(sync_dag_id(t) for t in tenants)
    acme = dags["rs2gcs_sync__acme"]
    assert "rs2gcs:invalid" not in acme.tags
    assert {t.task_id for t in acme.tasks} == {
        "plan",
        "small_table_groups",
        "sync_table",
        "sync_small_tables",
        "summary",
    }


def test_manifest_example_is_what_the_engine_writes():
    from airflow_rs2gcs.engine.manifest import MANIFEST_VERSION, build_manifest
    from airflow_rs2gcs.engine.paths import data_object_name, interval_partition, table_root
    from airflow_rs2gcs.engine.types import column_for
    from airflow_rs2gcs.engine.uploader import UploadedObject
    from airflow_rs2gcs.sql import select_table

    example = json.loads((EXAMPLES / "manifest.json").read_text(encoding="utf-8"))
    assert example["manifest_version"] == MANIFEST_VERSION

    def modifier(source_type: str) -> int:
        sized = re.fullmatch(r"numeric\((\d+),(\d+)\)", source_type)
        return ((int(sized[1]) << 16) | int(sized[2])) + 4 if sized else -1

    columns = [
        column_for(c["name"], c["source_type_oid"], modifier(c["source_type"])) for c in example["schema"]
    ]
    start = dt.datetime.fromisoformat(example["data_interval"]["start"])
    end = dt.datetime.fromisoformat(example["data_interval"]["end"])
    folder = f"{table_root('redshift', 'demo', 'public.orders')}/{interval_partition(start, end)}"
    objects = [UploadedObject(**o) for o in example["objects"]]
    assert [o.name for o in objects] == [data_object_name(folder, i, "parquet") for i in range(len(objects))]
    assert all(len(base64.b64decode(o.md5, validate=True)) == 16 for o in objects)
    rebuilt = build_manifest(
        objects=objects,
        columns=columns,
        source_query=select_table("public.orders"),
        export_format="parquet",
        compression="snappy",
        data_interval=(start.isoformat(), end.isoformat()),
        extra={"dag_id": "rs2gcs_sync__demo", "task_id": "sync_table"},
    )
    assert rebuilt == example


def test_webhook_payload_example_is_what_the_summary_posts():
    from airflow_rs2gcs.outcomes import table_outcomes
    from airflow_rs2gcs.tenants import parse_tenant

    example = json.loads((EXAMPLES / "webhook_payload.json").read_text(encoding="utf-8"))
    manifest_uri = example["manifest"]
    folder = manifest_uri.removeprefix("gs://demo-exports/").rsplit("/", 1)[0]
    tenant = parse_tenant(
        "demo", {"bucket": "demo-exports", "prefix": "redshift", "tables": [{"name": "public.orders"}]}
    )
    result = {k: example[k] for k in ("rows", "bytes", "objects")} | {"manifest": f"{folder}/_manifest.json"}
    interval = (example["data_interval"]["start"], example["data_interval"]["end"])
    assert table_outcomes(tenant, [{"object_prefix": folder}], [result], interval) == [example]


def test_webhook_verification_example_accepts_exactly_our_signature():
    from airflow_rs2gcs.webhooks import sign

    verify = _load(EXAMPLES / "verify_webhook.py", "rs2gcs_doc_verify_webhook").is_signed_by
    body = (EXAMPLES / "webhook_payload.json").read_bytes()
    assert verify("s3cret", body, sign(body, "s3cret"))
    assert not verify("other", body, sign(body, "s3cret"))
    assert not verify("s3cret", body + b" ", sign(body, "s3cret"))


def _devstack(name: str) -> ModuleType:
    """``rs2gcs_devstack.<name>``, imported here, not at collection: the local stack is Linux-only."""
    return importlib.import_module(f"rs2gcs_devstack.{name}")


def test_local_services_example_calls_the_real_api(monkeypatch):
    """Runs ``main()`` with autospecced stand-ins: every call must exist with that signature."""
    from airflow_rs2gcs.tenants import parse_tenant

    stack_module, services_module = _devstack("stack"), _devstack("services")
    _devstack("sample_data")
    postgres_module, gcs_module = _devstack("postgres"), _devstack("gcs")
    module = _load(EXAMPLES / "local_services.py", "rs2gcs_doc_local_services")
    for tenant_id, entry in module.TENANTS.items():
        assert parse_tenant(tenant_id, entry).is_ready

    stack = mock.create_autospec(stack_module.LocalStack, instance=True)
    stack.__enter__.return_value = stack
    stack.postgres = mock.create_autospec(postgres_module.LocalPostgres, instance=True)
    stack.gcs = mock.create_autospec(gcs_module.LocalGCS, instance=True)
    services = mock.create_autospec(services_module.AirflowServices, instance=True)
    services.__enter__.return_value = services
    services.username, services.password = "admin", "secret"
    services.trigger.return_value = {"dag_run_id": "manual__1"}
    make_stack = mock.create_autospec(stack_module.LocalStack, return_value=stack)
    make_services = mock.create_autospec(services_module.AirflowServices, return_value=services)
    monkeypatch.setattr(module, "LocalStack", make_stack)
    monkeypatch.setattr(module, "AirflowServices", make_services)
    monkeypatch.setattr(builtins, "input", lambda prompt="": "")

    module.main()

    make_services.assert_called_once_with(stack)
    services.create_pool.assert_called_once_with("rs2gcs_redshift__rs2gcs_redshift", 4)
    services.set_variable.assert_called_once_with("rs2gcs_tenants", module.TENANTS)
    services.wait_for_run.assert_called_once_with("rs2gcs_sync__acme", "manual__1")
    stack.gcs.create_bucket.assert_called_once_with("acme-exports")


# -- reference pages against the code -----------------------------------------------------------------------
def _page(name: str) -> str:
    return (REPO / "docs" / name).read_text(encoding="utf-8")


def test_operator_page_documents_every_parameter_and_templated_field():
    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    rows = {m[1]: m[0] for m in re.finditer(r"^\| `(\w+)` \|.*$", _page("operator.md"), re.MULTILINE)}
    params = [
        p.name
        for p in inspect.signature(RedshiftToGCSOperator.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    ]
    assert [p for p in params if p not in rows] == [], "parameters missing from operator.md's table"
    for field in RedshiftToGCSOperator.template_fields:
        assert "| yes |" in rows[field], f"operator.md: {field} is templated"


def test_tenant_contract_page_documents_every_key():
    from airflow_rs2gcs.tenants import TableSpec, Tenant, Webhook

    page = _page("tenant-contract.md")
    for model in (Tenant, TableSpec, Webhook):
        for name, info in model.model_fields.items():
            if name != "tenant_id":
                assert f"`{info.alias or name}`" in page, f"tenant-contract.md: {model.__name__}.{name}"


# -- (c) links, images, anchors -----------------------------------------------------------------------------
def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for match in HEADING.finditer(FENCED.sub("", doc.read_text(encoding="utf-8"))):
        slug = github_slug(match["text"])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


@pytest.mark.parametrize("doc", DOC_FILES, ids=_rel)
def test_relative_links_and_images_resolve(doc: Path):
    text = CODE_SPAN.sub("", FENCED.sub("", doc.read_text(encoding="utf-8")))
    broken = []
    for match in LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(f"{target}: no heading #{anchor} in {_rel(resolved)}")
    assert broken == [], f"{_rel(doc)}: broken links"


def test_github_slug_matches_githubs_rules():
    assert (
        github_slug("Tenant contract: the `rs2gcs_tenants` Variable")
        == "tenant-contract-the-rs2gcs_tenants-variable"
    )
    assert github_slug("Manifest (version 1)") == "manifest-version-1"


# -- (d) the landing page stays a landing page ------------------------------------------------------------
def test_readme_is_at_most_8_kb():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"
