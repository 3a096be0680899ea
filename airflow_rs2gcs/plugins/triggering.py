"""Trigger a DAG run for a button as Airflow's UI does: Airflow's own ``trigger_dag``, the user's name.

The run is a manual run with ``triggered_by`` UI, the requesting user as triggering user, and a logical
date of now (what the UI's Trigger form sends), so it looks in Airflow exactly like a run started from
the DAG's Trigger button; the DAG's Params validate the conf as they would there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import HTTPException, status


def trigger_run(dag_id: str, conf: dict[str, Any], user_name: str) -> str:
    """Create a queued run of ``dag_id`` with ``conf``; return its run id.

    409 if the DAG is not (yet) parsed or a run with that id exists; 422 if the DAG's Params refuse
    the conf.
    """
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user_name,
            conf=conf,
            logical_date=dt.datetime.now(dt.UTC),
            replace_microseconds=False,
        )
    except DagNotFound:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"DAG {dag_id} does not exist yet (the dag-processor creates it within a parse interval "
            "after the tenant is configured); try again shortly",
        ) from None
    except DagRunAlreadyExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except Exception as exc:
        if type(exc).__name__ == "ParamValidationError" or isinstance(exc, ValueError):
            raise HTTPException(422, f"{dag_id} refused the request: {exc}") from None
        raise
    if run is None:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"{dag_id}: Airflow created no run")
    return str(run.run_id)
