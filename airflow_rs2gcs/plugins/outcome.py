"""A triggered run as the page follows it: state, the widget's message, the exact error, per-table progress.

The message is the lifecycle task's return value (``Activation successful for redshift_to_gcs``,
``Deactivation completed for acme``); Configure returns the relations it listed, so its message is
written here. A sync run's message sums its ``summary`` task's return value.

The error is the exception of the failed task as its log records it: Airflow 3 writes task logs as
structured records, and the record of a failed try carries ``error_detail`` (exception type and
value). The log is read with Airflow's own ``TaskLogReader``, so remote logging works the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from airflow_rs2gcs.factory import PLAN_TASK_ID, PLAN_XCOM_KEY, SMALL_TABLES_TASK_ID, TABLE_TASK_ID
from airflow_rs2gcs.plugins.history import (
    EXPORT_TASK_IDS,
    SUMMARY_TASK_ID,
    RunRow,
    TaskRow,
    return_values,
    task_rows,
)
from airflow_rs2gcs.plugins.widget import CONTROL_DAG_IDS, LIFECYCLE_TASK_IDS

log = logging.getLogger(__name__)
FAILED_STATES = frozenset({"failed", "upstream_failed"})


def _error_of_record(record: Mapping[str, Any]) -> str | None:
    """``Type: message`` of a structured log record's exception, ``None`` when it has none."""
    details = record.get("error_detail")
    if isinstance(details, list) and details:
        last = details[-1] if isinstance(details[-1], Mapping) else {}
        exc_type, exc_value = last.get("exc_type"), last.get("exc_value")
        if exc_type or exc_value:
            return f"{exc_type}: {exc_value}" if exc_type else str(exc_value)
    return None


def errors_in_log(records: Iterable[Any]) -> list[str]:
    """Every exception a task log records, in order (records are dicts or pydantic models)."""
    found = []
    for record in records:
        data = record.model_dump() if hasattr(record, "model_dump") else record
        if isinstance(data, Mapping):
            error = _error_of_record(data)
            if error:
                found.append(error)
    return found


def task_error(session: Session, dag_id: str, run_id: str, task: TaskRow) -> str | None:
    """The exception that failed the task's last try, read from its log; ``None`` if none is recorded."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.log_reader import TaskLogReader
    from sqlalchemy import select

    ti = session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task.task_id,
            TaskInstance.map_index == task.map_index,
        )
    )
    if ti is None or task.try_number < 1:
        return None
    try:
        stream, _ = TaskLogReader().read_log_chunks(ti, task.try_number, {})  # type: ignore[typeddict-item]
        errors = errors_in_log(stream if isinstance(stream, list | tuple) else list(stream))
    except Exception:  # a missing or unreadable log: the page says which task failed
        log.warning("could not read the log of %s %s %s", dag_id, run_id, task.task_id, exc_info=True)
        return None
    return errors[-1] if errors else None


def control_message(dag_id: str, value: Any, conf: Mapping[str, Any]) -> str | None:
    """A control run's message: the lifecycle task's text, or Configure's own summary."""
    if isinstance(value, str):
        return value
    if dag_id == CONTROL_DAG_IDS["configure"] and isinstance(value, list):
        tables = conf.get("tables") or []
        return f"Configuration saved for {conf.get('tenant_id')}: {len(tables)} table(s) selected"
    return None


def sync_message(summary: Mapping[str, Any] | None) -> str | None:
    """A sync run's message from its summary."""
    if not summary:
        return None
    return (
        f"Synced {summary.get('tables', 0)} table(s): {summary.get('rows', 0)} rows, "
        f"{summary.get('bytes', 0)} bytes, {summary.get('objects', 0)} objects"
    )


def _table_name(plan: Any, index: int, task: TaskRow, tenant_tables: Mapping[str, str]) -> str:
    """The table of an older run's ``sync_table`` (one per table): from the plan, else its label."""
    prefix = ""
    if isinstance(plan, list) and index < len(plan) and isinstance(plan[index], Mapping):
        prefix = str(plan[index].get("object_prefix") or "")
    for folder_root, name in tenant_tables.items():
        if prefix.startswith(folder_root + "/"):
            return name
    return task.label or f"{TABLE_TASK_ID}[{index}]"


def _line(table: str, status: str, result: Mapping[str, Any], bucket: str | None) -> dict[str, Any]:
    manifest = result.get("manifest")
    return {
        "table": table,
        "status": status,
        "rows": result.get("rows"),
        "bytes": result.get("bytes"),
        "objects": result.get("objects"),
        "manifest": f"gs://{result.get('bucket') or bucket}/{manifest}" if manifest else None,
    }


def _planned_names(full_plan: Any, task: TaskRow) -> list[str]:
    """The tables the plan gave one export task (``[]`` when the plan is not readable)."""
    kind = "small" if task.task_id == SMALL_TABLES_TASK_ID else "large"
    groups = full_plan.get(kind) if isinstance(full_plan, Mapping) else None
    if not isinstance(groups, list) or not 0 <= task.map_index < len(groups):
        return []
    return [str(t.get("table")) for t in groups[task.map_index].get("tables") or [] if isinstance(t, Mapping)]


def _task_lines(task: TaskRow, result: Any, full_plan: Any, bucket: str | None) -> list[dict[str, Any]]:
    """One line per table of an export task: a table with an outcome succeeded, even in a failed task."""
    outcomes = {str(o["table"]): o for o in result if isinstance(o, Mapping) and "table" in o}
    names = _planned_names(full_plan, task) or list(outcomes)
    state = task.state or "scheduled"
    return [
        _line(name, "success" if name in outcomes else state, outcomes.get(name, {}), bucket)
        for name in names
    ]


def table_progress(
    session: Session, run: RunRow, tasks: list[TaskRow], bucket: str | None, tenant_tables: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One line per table: state and, once exported, rows, bytes, objects and manifest.

    Each export task's return value lists its tables' outcomes; runs from before small tables were
    grouped have one ``sync_table`` per table whose return value is that table's outcome.
    """
    plan = return_values(session, [run.pk], PLAN_TASK_ID).get((run.pk, -1))
    full_plan = return_values(session, [run.pk], PLAN_TASK_ID, key=PLAN_XCOM_KEY).get((run.pk, -1))
    lines = []
    for task_id in EXPORT_TASK_IDS:
        results = return_values(session, [run.pk], task_id, map_index=None)
        for task in sorted((t for t in tasks if t.task_id == task_id), key=lambda t: t.map_index):
            result = results.get((run.pk, task.map_index))
            if isinstance(result, list) or full_plan is not None:
                lines += _task_lines(task, result if isinstance(result, list) else [], full_plan, bucket)
            else:
                table = _table_name(plan, task.map_index, task, tenant_tables)
                old = result if isinstance(result, Mapping) else {}
                lines.append(_line(table, task.state or "scheduled", old, bucket))
    return lines


def run_error(session: Session, run: RunRow, tasks: list[TaskRow]) -> str | None:
    """The failed tasks' exceptions, each named by its task; ``None`` unless a task failed."""
    failed = [t for t in tasks if t.state == "failed"]
    if not failed and run.state == "failed":
        failed = [t for t in tasks if t.state in FAILED_STATES]
    messages = []
    for task in sorted(failed, key=lambda t: (t.task_id == SUMMARY_TASK_ID, t.task_id, t.map_index)):
        where = task.task_id if task.map_index < 0 else f"{task.task_id}[{task.label or task.map_index}]"
        error = task_error(session, run.dag_id, run.run_id, task)
        messages.append(f"{where}: {error}" if error else f"{where}: {task.state}")
    if not messages and run.state == "failed":
        return "the run failed before any task ran (see the run in Airflow)"
    return "\n".join(messages) or None


def describe_run(
    session: Session,
    run: RunRow,
    conf: Mapping[str, Any],
    bucket: str | None = None,
    tenant_tables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run as ``GET .../runs/{dag_id}/{run_id}`` answers it."""
    tasks = task_rows(session, run.dag_id, run.run_id)
    lifecycle_task = LIFECYCLE_TASK_IDS.get(run.dag_id)
    tables: list[dict[str, Any]] = []
    if lifecycle_task is not None:
        value = return_values(session, [run.pk], lifecycle_task).get((run.pk, -1))
        message = control_message(run.dag_id, value, conf)
    else:
        summary = return_values(session, [run.pk], SUMMARY_TASK_ID).get((run.pk, -1))
        message = sync_message(summary if isinstance(summary, Mapping) else None)
        tables = table_progress(session, run, tasks, bucket, tenant_tables or {})
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "message": message if run.state == "success" else None,
        "error": run_error(session, run, tasks) if run.state == "failed" else None,
        "tables": tables,
    }
