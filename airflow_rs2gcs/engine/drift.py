"""Schema drift: how an export's columns differ from the table's last published manifest.

"The table's last published manifest" is the newest ``_manifest.json`` (by GCS ``updated`` time) under
the table's dataset root (:func:`~airflow_rs2gcs.engine.paths.dataset_root`: the folder without its
``dt=``/``interval=`` partitions), whichever interval it belongs to. It is found with one listing
restricted by ``matchGlob`` to manifests (GCS returns only those objects, page by page); names are
filtered again here so a server that ignores the glob still gives the right answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_rs2gcs.engine.paths import MANIFEST_NAME

log = logging.getLogger(__name__)


class SchemaDrift(RuntimeError):
    """The columns differ from the last published manifest and ``on_schema_change`` is ``fail``."""

    def __init__(self, change: Mapping[str, Any], previous: str) -> None:
        self.change = dict(change)
        super().__init__(
            f"schema changed since {previous} ({describe_change(change)}); nothing was exported and the "
            "published manifests are unchanged. To accept the new schema, set on_schema_change to "
            "'evolve' for one run (Configure's table options, or the operator's parameter), then back "
            "to 'fail'; to keep the old one, change the table or the query back"
        )


def column_type(entry: Mapping[str, Any]) -> str:
    """A schema entry's type as the diff reports it: ``<Redshift type> (<Arrow type>)``."""
    return f"{entry.get('source_type')} ({entry.get('arrow_type')})"


def schema_diff(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """``{"added", "removed", "changed", "reordered"}`` between two manifest schemas; ``None`` if equal."""
    before = {e["name"]: column_type(e) for e in previous}
    after = {e["name"]: column_type(e) for e in current}
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [
        {"name": name, "from": before[name], "to": after[name]}
        for name in after
        if name in before and before[name] != after[name]
    ]
    kept_before = [name for name in before if name in after]
    kept_after = [name for name in after if name in before]
    reordered = kept_before != kept_after
    if not (added or removed or changed or reordered):
        return None
    return {"added": added, "removed": removed, "changed": changed, "reordered": reordered}


def describe_change(change: Mapping[str, Any]) -> str:
    """One line: added, removed, changed (with types) and whether the order changed."""
    parts = []
    if change.get("added"):
        parts.append(f"added: {', '.join(change['added'])}")
    if change.get("removed"):
        parts.append(f"removed: {', '.join(change['removed'])}")
    if change.get("changed"):
        parts.append(
            "changed: " + ", ".join(f"{c['name']} from {c['from']} to {c['to']}" for c in change["changed"])
        )
    if change.get("reordered"):
        parts.append("column order changed")
    return "; ".join(parts) or "no difference"


def latest_manifest(gcs_hook: Any, bucket: str, root: str) -> tuple[str, dict[str, Any]] | None:
    """The newest manifest under ``root/`` (name and document), or ``None`` when there is none."""
    client_bucket = gcs_hook.get_conn().bucket(bucket)
    blobs = client_bucket.list_blobs(
        prefix=f"{root}/", match_glob=f"**/{MANIFEST_NAME}", fields="items(name,updated),nextPageToken"
    )
    manifests = [b for b in blobs if b.name.endswith(f"/{MANIFEST_NAME}")]
    if not manifests:
        return None
    newest = max(manifests, key=lambda b: (b.updated, b.name))
    try:
        document = json.loads(gcs_hook.download(bucket_name=bucket, object_name=newest.name))
    except Exception:  # deleted meanwhile (a re-run retracting it): compare with nothing
        log.warning("could not read the last manifest gs://%s/%s", bucket, newest.name, exc_info=True)
        return None
    return (newest.name, document) if isinstance(document, dict) else None
