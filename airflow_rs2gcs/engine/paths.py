"""Object names: where a tenant's table output for one data interval lands, and what may not escape it.

Layout (Hive-style partitions, so BigQuery external tables and Spark see ``dt`` and ``interval``)::

    gs://<bucket>/<prefix>/<tenant_id>/<table>/dt=<YYYY-MM-DD>/interval=<start>_<end>/part-00000.parquet
                                                                                   .../_manifest.json
                                                                                   .../_keys/part-00000.parquet

``dt`` is the interval's start date and ``start``/``end`` are ``YYYYMMDDTHHMMSSZ`` in UTC. The names
depend only on tenant, table and interval, so a re-run of an interval replaces its own objects.
``<table>`` is :func:`table_folder` of the table's name: the name itself for plain names, a slug and a
hash for names with a quoted part. ``_keys/`` holds the table's primary key set when the tenant
asks for ``capture_deletes``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata

from airflow_rs2gcs.identifiers import parse_table_name

MANIFEST_NAME = "_manifest.json"
KEYS_FOLDER = "_keys"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_=$.-]+$")
_SLUG_PART_MAX = 64


def _utc_stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def interval_partition(start: dt.datetime, end: dt.datetime) -> str:
    """The ``dt=.../interval=...`` part of an object name for a data interval."""
    return f"dt={start.astimezone(dt.UTC):%Y-%m-%d}/interval={_utc_stamp(start)}_{_utc_stamp(end)}"


def manual_partition(run_after: dt.datetime) -> str:
    """The folder of a run that has no data interval (triggered without a logical date)."""
    return f"dt={run_after.astimezone(dt.UTC):%Y-%m-%d}/interval=manual_{_utc_stamp(run_after)}"


def table_root(prefix: str, tenant_id: str, table: str) -> str:
    """``<prefix>/<tenant_id>/<table>`` without empty segments."""
    return "/".join(part for part in (prefix.strip("/"), tenant_id, table) if part)


def check_object_prefix(object_prefix: str) -> str:
    """Return a normalised prefix; refuse one that is empty, absolute, or has ``.``/``..``/odd segments."""
    relative = object_prefix.strip().rstrip("/")
    segments = relative.split("/")
    bad = [s for s in segments if s in {"", ".", ".."} or not _SAFE_SEGMENT.fullmatch(s)]
    if not relative or bad:
        raise ValueError(
            f"object prefix {object_prefix!r} is not allowed: it must be a relative path of segments made of "
            "letters, digits and '_', '=', '$', '.', '-' (no empty, '.' or '..' segments)"
        )
    return "/".join(segments)


def dataset_root(object_prefix: str) -> str:
    """The prefix without its trailing Hive partition segments (``key=value``): the table's Asset path."""
    segments = object_prefix.strip("/").split("/")
    while len(segments) > 1 and "=" in segments[-1]:
        segments.pop()
    return "/".join(segments)


def data_object_name(object_prefix: str, index: int, extension: str) -> str:
    """``<object_prefix>/part-00000.<ext>``."""
    return f"{object_prefix}/part-{index:05d}.{extension}"


def keys_prefix(object_prefix: str) -> str:
    """``<object_prefix>/_keys``: the folder of an export's primary key set (``capture_deletes``)."""
    return f"{object_prefix}/{KEYS_FOLDER}"


def manifest_object_name(object_prefix: str) -> str:
    """``<object_prefix>/_manifest.json``."""
    return f"{object_prefix}/{MANIFEST_NAME}"


def _slug(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9_]+", "_", ascii_text).strip("_")[:_SLUG_PART_MAX] or "_"


def table_folder(name: str) -> str:
    """The folder of a table's output: ``name`` itself when no part is quoted, else a slug and a hash.

    A name without quotes (``public.orders``, ``Sales.Orders``) keeps the folder it always had: the name
    as written. A name with a quoted part becomes each part's lower-case ASCII slug (accents dropped,
    every run of other characters made ``_``), joined by ``.``, then ``-`` and the first 8 hex digits
    of the SHA-256 of the name's canonical spelling: ``analytics."Mixed Case Table"`` ->
    ``analytics.mixed_case_table-<8 hex>``. Plain names never contain ``-``, so the two kinds never
    meet, and the hash keeps apart names that slug alike (``"A b"`` and ``"a_b"``).
    """
    parsed = parse_table_name(name)
    if not parsed.quoted:
        return name
    parts = [parsed.table] if parsed.schema is None else [parsed.schema, parsed.table]
    digest = hashlib.sha256(parsed.canonical.encode("utf-8")).hexdigest()[:8]
    return ".".join(_slug(part) for part in parts) + f"-{digest}"
