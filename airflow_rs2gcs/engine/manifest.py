"""The manifest: written last, it is what tells a complete export from a partial one.

Readers should trust an interval folder only when ``_manifest.json`` exists, and read exactly the
objects it lists (each with rows, bytes and the MD5 that GCS reports as ``md5Hash``). A new try of
an interval first retracts the old manifest, so a failed try never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from airflow_rs2gcs.engine.paths import manifest_object_name
from airflow_rs2gcs.engine.types import Column
from airflow_rs2gcs.engine.uploader import UploadedObject

MANIFEST_VERSION = 1


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
    """The manifest document (see the README's "Output layout and manifest")."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": export_format,
        "compression": compression,
        "data_interval": {"start": data_interval[0], "end": data_interval[1]},
        "source_query": source_query,
        "schema": [
            {"name": c.name, "arrow_type": str(c.arrow_type), "source_type_oid": c.type_oid} for c in columns
        ],
        "rows": sum(o.rows for o in objects),
        "bytes": sum(o.bytes for o in objects),
        "objects": [asdict(o) for o in objects],
        **(extra or {}),
    }


def retract_manifest(gcs_hook: Any, bucket: str, object_prefix: str) -> None:
    """Delete an earlier try's manifest, so the folder reads as incomplete until this try publishes."""
    gcs_hook.delete(bucket_name=bucket, object_name=manifest_object_name(object_prefix), ignore_error=True)


def publish_manifest(gcs_hook: Any, bucket: str, object_prefix: str, manifest: dict[str, Any]) -> str:
    """Upload the manifest, then delete objects in the folder it does not list (an earlier try's)."""
    name = manifest_object_name(object_prefix)
    gcs_hook.upload(
        bucket_name=bucket,
        object_name=name,
        data=json.dumps(manifest, indent=2, ensure_ascii=False),
        mime_type="application/json",
        num_max_attempts=5,
    )
    keep = {o["name"] for o in manifest["objects"]} | {name}
    for orphan in set(gcs_hook.list(bucket, prefix=f"{object_prefix}/")) - keep:
        gcs_hook.delete(bucket_name=bucket, object_name=orphan, ignore_error=True)
    return name
