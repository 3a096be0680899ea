"""The reader's clean-up when the connection breaks mid-export (the driver faked at its boundary)."""

from __future__ import annotations

import logging

import pytest

from airflow_rs2gcs.engine.wire_source import WireRowSource


class CutCursor:
    """A cursor whose FETCH fails as a cut connection does."""

    def __init__(self, statements: list[str]) -> None:
        self.statements = statements

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if sql.startswith("FETCH"):
            raise ConnectionResetError("server closed the connection")

    def close(self) -> None:
        self.statements.append("<close>")


class CutConnection:
    """The parts of a ``redshift_connector`` connection the reader touches; rollback fails too."""

    def __init__(self) -> None:
        self.autocommit = False
        self.message_types = {b"D": lambda data, cursor: None}
        self.redshift_types: dict = {}
        self.statements: list[str] = []

    def cursor(self) -> CutCursor:
        return CutCursor(self.statements)

    def rollback(self) -> None:
        raise BrokenPipeError("broken pipe")


def test_a_cut_connection_raises_its_own_error_and_logs_the_failed_rollback_in_one_line(caplog):
    connection = CutConnection()
    reader = WireRowSource(connection, "SELECT 1 AS one")
    with (
        caplog.at_level(logging.WARNING, logger="airflow_rs2gcs.engine.reader"),
        pytest.raises(ConnectionResetError, match="server closed the connection"),
    ):
        list(reader.batches())
    [record] = [r for r in caplog.records if r.name == "airflow_rs2gcs.engine.reader"]
    assert record.getMessage() == (
        "could not roll back the export's read transaction: BrokenPipeError: broken pipe"
    )
    assert record.exc_info is None
    assert connection.statements[0] == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    assert connection.statements[-1] == "<close>"
    assert connection.autocommit is False  # restored
