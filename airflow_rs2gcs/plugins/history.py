"""What the metadata database knows about tenants' runs: last and next syncs, run history, one run's outcome.

Every function takes a SQLAlchemy session and a fixed number of queries, whatever the number of
tenants: the tenant list asks for the last runs of one page of tenants in one grouped query, their
summaries in one more, and their next runs in a third. A sync run's numbers are its ``summary`` task's
return value (tables, rows, bytes, objects); a table's are in the return value of the mapped export
task that exported it (``sync_table``: one large table; ``sync_small_tables``: a group of small ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from airflow_rs2gcs.factory import SMALL_TABLES_TASK_ID, TABLE_TASK_ID

# The sync DAG's task ids come from the factory that names them: a rename there reaches the page.
SUMMARY_TASK_ID = "summary"  # the factory's @task summary, named by its function
EXPORT_TASK_IDS = (TABLE_TASK_ID, SMALL_TABLES_TASK_ID)
RETURN_VALUE = "return_value"


@dataclass(frozen=True)
class RunRow:
    """A DAG run as the page shows it."""

    pk: int
    dag_id: str
    run_id: str
    state: str
    run_after: dt.datetime | None
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end, ``None`` while running."""
        if self.start is None or self.end is None:
            return None
        return round((self.end - self.start).total_seconds(), 3)


def iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 text of an aware datetime, ``None`` for ``None``."""
    return moment.isoformat() if moment is not None else None


def _run_columns() -> tuple[Any, ...]:
    from airflow.models.dagrun import DagRun

    return (
        DagRun.id,
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.run_after,
        DagRun.start_date,
        DagRun.end_date,
    )


def _run_row(row: Sequence[Any]) -> RunRow:
    pk, dag_id, run_id, state, run_after, start, end = row
    return RunRow(int(pk), str(dag_id), str(run_id), str(state), run_after, start, end)


def last_runs(session: Session, dag_ids: Iterable[str]) -> dict[str, RunRow]:
    """The latest run (by ``run_after``) of each DAG, in one grouped query."""
    from airflow.models.dagrun import DagRun

    ids = sorted(set(dag_ids))
    if not ids:
        return {}
    latest = (
        select(DagRun.dag_id, func.max(DagRun.run_after).label("last"))
        .where(DagRun.dag_id.in_(ids))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    query = select(*_run_columns()).join(
        latest, and_(DagRun.dag_id == latest.c.dag_id, DagRun.run_after == latest.c.last)
    )
    return {run.dag_id: run for run in map(_run_row, session.execute(query).all())}


def recent_runs(session: Session, dag_id: str, limit: int) -> list[RunRow]:
    """The DAG's last ``limit`` runs, newest first."""
    from airflow.models.dagrun import DagRun

    query = select(*_run_columns()).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc())
    return [_run_row(row) for row in session.execute(query.limit(limit)).all()]


def find_run(session: Session, dag_id: str, run_id: str) -> tuple[RunRow, dict[str, Any]] | None:
    """One run and its conf, ``None`` if there is no such run."""
    from airflow.models.dagrun import DagRun

    query = select(*_run_columns(), DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    row = session.execute(query).first()
    if row is None:
        return None
    return _run_row(row[:7]), dict(row[7] or {})


def return_values(
    session: Session,
    run_pks: Iterable[int],
    task_id: str,
    map_index: int | None = -1,
    key: str = RETURN_VALUE,
) -> dict[tuple[int, int], Any]:
    """``(run pk, map index) -> XCom`` of ``task_id`` in those runs (``map_index=None``: all).

    ``key`` picks the XCom: the return value by default.
    """
    from airflow.models.xcom import XComModel

    pks = sorted(set(run_pks))
    if not pks:
        return {}
    query = select(XComModel.dag_run_id, XComModel.map_index, XComModel.value).where(
        XComModel.dag_run_id.in_(pks), XComModel.task_id == task_id, XComModel.key == key
    )
    if map_index is not None:
        query = query.where(XComModel.map_index == map_index)
    return {
        (int(row.dag_run_id), int(row.map_index)): XComModel.deserialize_value(row)
        for row in session.execute(query).all()
    }


def summaries(session: Session, runs: Iterable[RunRow]) -> dict[int, Mapping[str, Any]]:
    """Run pk -> its summary (tables, rows, bytes, objects) for the sync runs that have one."""
    values = return_values(session, [run.pk for run in runs], SUMMARY_TASK_ID)
    return {pk: value for (pk, _), value in values.items() if isinstance(value, Mapping)}


def next_runs(session: Session, dag_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """When each active, unpaused DAG's next scheduled run will be created (one query)."""
    from airflow.models.dag import DagModel

    ids = sorted(set(dag_ids))
    if not ids:
        return {}
    query = select(DagModel.dag_id, DagModel.next_dagrun_create_after).where(
        DagModel.dag_id.in_(ids),
        DagModel.is_paused.is_(False),
        DagModel.is_stale.is_(False),
        DagModel.next_dagrun_create_after.is_not(None),
    )
    return {str(dag_id): when for dag_id, when in session.execute(query).all() if when is not None}


def existing_dags(session: Session, dag_ids: Iterable[str]) -> set[str]:
    """Which of these DAGs the dag-processor has parsed and not marked stale."""
    from airflow.models.dag import DagModel

    query = select(DagModel.dag_id).where(DagModel.dag_id.in_(sorted(set(dag_ids))), ~DagModel.is_stale)
    return {str(dag_id) for dag_id in session.scalars(query).all()}


@dataclass(frozen=True)
class TaskRow:
    """A task instance of a run: id, map index, state, try number and its rendered map index."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    label: str | None


def task_rows(session: Session, dag_id: str, run_id: str) -> list[TaskRow]:
    """Every task instance of a run, mapped ones included."""
    from airflow.models.taskinstance import TaskInstance

    query = select(
        TaskInstance.task_id,
        TaskInstance.map_index,
        TaskInstance.state,
        TaskInstance.try_number,
        TaskInstance._rendered_map_index,
    ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    return [
        TaskRow(str(task_id), int(index), None if state is None else str(state), int(tries or 0), label)
        for task_id, index, state, tries, label in session.execute(query).all()
    ]
