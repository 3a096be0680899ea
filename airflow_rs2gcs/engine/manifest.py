"""The manifest: written last, it is what tells a complete export from a partial one.

Readers should trust an interval folder only when ``_manifest.json`` exists, and read exactly the
objects it lists (each with rows, bytes and the MD5 that GCS reports as ``md5Hash``). A new try of
an interval first retracts the old manifest, so a failed try never leaves a folder that looks
complete; after publishing, objects in the folder that the manifest does not list (an earlier try's)
are deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from airflow_rs2gcs.engine.paths import manifest_object_name
from airflow_rs2gcs.engine.types import Column
from airflow_rs2gcs.engine.uploader import UploadedObject, delete_object, with_retries

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


def schema_entries(columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The manifest's ``schema``: per column its name, Arrow type and Redshift type."""
    return [
        {
            "name": c.name,
            "arrow_type": str(c.arrow_type),
            "source_type": c.type_name,
            "source_type_oid": c.type_oid,
        }
        for c in columns
    ]


def build_manifest(
    *,
    objects: Sequence[UploadedObject],
    columns: Sequence[Column],
    source_query: str,
    export_format: str,
    compression: str,
    data_interval: tuple[str | None, str | None],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest document, version :data:`MANIFEST_VERSION` (specified in ``docs/output-format.md``)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": export_format,
        "compression": compression,
        "data_interval": {"start": data_interval[0], "end": data_interval[1]},
        "source_query": source_query,
        "schema": schema_entries(columns),
        "rows": sum(o.rows for o in objects),
        "bytes": sum(o.bytes for o in objects),
        "objects": [asdict(o) for o in objects],
        **(extra or {}),
    }


def retract_manifest(gcs_hook: Any, bucket: str, object_prefix: str) -> None:
    """Delete an earlier try's manifest, so the folder reads as incomplete until this try publishes."""
    delete_object(gcs_hook, bucket, manifest_object_name(object_prefix))


def delete_unlisted(gcs_hook: Any, bucket: str, object_prefix: str, keep: set[str]) -> list[str]:
    """Delete the objects under ``object_prefix/`` that are not in ``keep``; return their names."""
    orphans = sorted(set(gcs_hook.list(bucket, prefix=f"{object_prefix}/")) - keep)
    for orphan in orphans:
        delete_object(gcs_hook, bucket, orphan)
    return orphans


def listed_objects(manifest: dict[str, Any]) -> set[str]:
    """The names of every object the manifest lists: the data's and the key set's (``keys``)."""
    listed = [*manifest["objects"], *(manifest.get("keys") or {}).get("objects", [])]
    return {o["name"] for o in listed}


def publish_manifest(gcs_hook: Any, bucket: str, object_prefix: str, manifest: dict[str, Any]) -> str:
    """Upload the manifest, then delete objects in the folder it does not list (an earlier try's)."""
    name = manifest_object_name(object_prefix)
    body = json.dumps(manifest, indent=2, ensure_ascii=False)

    def upload() -> None:
        gcs_hook.upload(
            bucket_name=bucket, object_name=name, data=body, mime_type="application/json", num_max_attempts=1
        )

    with_retries(upload, f"upload of gs://{bucket}/{name}")
    try:
        orphans = delete_unlisted(gcs_hook, bucket, object_prefix, listed_objects(manifest) | {name})
    except Exception:  # the manifest is out: readers ignore unlisted objects, the next try removes them
        log.warning("could not delete an earlier try's objects under %s", object_prefix, exc_info=True)
    else:
        if orphans:
            log.info("deleted %d object(s) of an earlier try: %s", len(orphans), ", ".join(orphans))
    return name


def read_manifest(gcs_hook: Any, bucket: str, object_prefix: str) -> dict[str, Any] | None:
    """The published manifest of ``object_prefix``, or ``None`` when the folder has none (not complete)."""
    from google.api_core.exceptions import NotFound

    try:
        body = gcs_hook.download(bucket_name=bucket, object_name=manifest_object_name(object_prefix))
    except NotFound:
        return None
    manifest = json.loads(body)
    return manifest if isinstance(manifest, dict) else None
