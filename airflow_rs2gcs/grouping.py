"""Which tables share a sync task: the grouping rule, pure (no I/O), applied by the ``plan`` task.

Under a real scheduler each task costs seconds of start-up, while a small table exports in a fraction of
a second: a tenant with a hundred small tables would spend most of its sync starting tasks. So the plan
sorts tables by their expected size (the catalog's row estimate, or a table's ``expected_rows`` hint):

- a table whose estimate is above ``small_table_rows``, or unknown (a view, a custom query without a
  hint, a table the catalog has no estimate for), is *large* and keeps a task of its own;
- the small tables are packed, in the tenant's order, into groups of at most :data:`MAX_GROUP_TABLES`
  tables and :data:`MAX_GROUP_ROWS` estimated rows, so a retry of one group stays cheap.

With grouping switched off (``group_small_tables: false``) every table is large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_GROUP_TABLES = 25
MAX_GROUP_ROWS = 1_000_000
# Airflow stores a rendered map index in a String(250) column.
MAX_LABEL_CHARS = 250
SMALL_LABEL_PREFIX = "small: "


@dataclass(frozen=True)
class Grouping:
    """The tables of one run split into one-table tasks (``large``) and shared tasks (``small``).

    Each inner list holds the planned tables (the keyword dicts ``RedshiftTablesToGCSOperator`` takes in
    its ``tables``) of one task, in the tenant's order.
    """

    large: list[list[dict[str, Any]]] = field(default_factory=list)
    small: list[list[dict[str, Any]]] = field(default_factory=list)


def is_small(estimate: int | None, small_table_rows: int) -> bool:
    """Whether a table expected to hold ``estimate`` rows (``None``: unknown) may share a task."""
    return estimate is not None and estimate <= small_table_rows


def group_tables(
    planned: Sequence[dict[str, Any]],
    estimates: Mapping[str, int | None],
    small_table_rows: int,
    max_tables: int = MAX_GROUP_TABLES,
    max_rows: int = MAX_GROUP_ROWS,
) -> Grouping:
    """Split ``planned`` (each with a ``table`` key) by ``estimates`` (table name -> rows or ``None``).

    Small tables fill a group until it holds ``max_tables`` tables or adding the next would pass
    ``max_rows`` estimated rows; a group of a single small table is still a group (its task holds the
    small-table pool slots, and says so in its name).
    """
    grouping = Grouping()
    current: list[dict[str, Any]] = []
    current_rows = 0
    for table in planned:
        estimate = estimates.get(table["table"])
        if estimate is None or not is_small(estimate, small_table_rows):
            grouping.large.append([table])
            continue
        if current and (len(current) >= max_tables or current_rows + estimate > max_rows):
            grouping.small.append(current)
            current, current_rows = [], 0
        current.append(table)
        current_rows += estimate
    if current:
        grouping.small.append(current)
    return grouping


def task_label(names: Sequence[str], grouped: bool) -> str:
    """The map-index name of a task over ``names``: ``orders``, or ``small: a, b, c +7`` for a group.

    Names are listed while they fit in Airflow's 250 characters; ``+N`` counts the rest.
    """
    if not grouped:
        return names[0][:MAX_LABEL_CHARS] if names else ""
    shown: list[str] = []
    for index, name in enumerate(names):
        rest = len(names) - index - 1
        candidate = SMALL_LABEL_PREFIX + ", ".join([*shown, name]) + (f" +{rest}" if rest else "")
        if len(candidate) > MAX_LABEL_CHARS:
            break
        shown.append(name)
    hidden = len(names) - len(shown)
    return SMALL_LABEL_PREFIX + ", ".join(shown) + (f" +{hidden}" if hidden else "")
