"""Custom queries must be ONE read-only SELECT; strings and comments never fool the check, and a keyword
used as a column name is not a statement."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select

CORPUS = sorted((Path(__file__).parents[1] / "integration" / "sql").glob("tpc*/q*.sql"))
# Words that are keywords somewhere (statements, clauses, types) and legal column names everywhere.
KEYWORD_NAMES = [
    "comment",
    "release",
    "lock",
    "import",
    "export",
    "date",
    "timestamp",
    "type",
    "name",
    "value",
]


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "SELECT order_date, sum(amount) FROM public.orders GROUP BY 1;",
        "with t as (select 1 as x) select * from t",
        "select 'delete from x; drop table y' as note",
        'select 1 as "update"',
        "select $$insert$$ as s -- drop table x\n",
        "/* create */ select 1",
    ],
)
def test_read_only_selects_pass(sql):
    checked = check_read_only_select(sql)
    assert not checked.endswith(";") and checked in sql


@pytest.mark.parametrize("word", KEYWORD_NAMES)
@pytest.mark.parametrize(
    "template",
    [
        "select {w} from t",
        "select id, {w} from t",
        "select {w}, id from t",
        "select id, {w}, id2 from t",
        "select id as {w} from t",
        "select {w} as x, x as {w} from t",
        "select t.{w} from t",
        "select {w}.id from {w}",
        'select "{w}" from t',
        "select id from t where {w} = 1",
        "select id from t where {w} is null and {w} like '%x%'",
        "select id from t where ({w} is not null or {w} in (1, 2))",
        "select id from t order by {w} desc, {w}",
        "select {w}, count(*) from t group by {w} having max({w}) > 0",
        "select count({w}), coalesce({w}, 0), {w} + 1, {w}::text from t",
        "with c as (select {w} from t) select c.{w} from c",
        "select {w} from t where id in (select {w} from u)",
        "select case when {w} > 0 then {w} else null end from t",
        "select sum(x) over (partition by {w} order by {w}) from t",
    ],
)
def test_keywords_used_as_column_names_pass(template, word):
    sql = template.format(w=word)
    assert check_read_only_select(sql) == sql


@pytest.mark.parametrize(
    "sql",
    [
        # A data-modifying keyword that no name follows, that is qualified, aliased or a list item, is a name.
        "select update, delete, insert, merge from t",
        "select id, update from t where update > 0 and delete = 0",
        "select t.update, t.delete, t.insert, t.merge from t",
        "select count(update), max(delete) from t group by insert, merge order by merge",
        "select id from t order by update",
        "select 1 as into, t.into from t",
        "with update as (select 1 as x) select x from update",
        # FOR without a lock strength after it is not a locking clause.
        "select substring(s from 1 for 2), overlay(s placing 'x' from 1 for 1) from t",
        # A name the server reads as one word (bytes from 0x80 up are identifier characters).
        "select naïve_delete, délete from t",
    ],
)
def test_data_modifying_keywords_as_names_pass(sql):
    assert check_read_only_select(sql) == sql


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: f"{path.parent.name}-{path.stem}")
def test_the_tpc_corpus_passes(path):
    """The 22 TPC-H and the TPC-DS queries (run on the database by tests/integration/test_query_corpus.py)."""
    sql = path.read_text()
    assert check_read_only_select(sql) == sql.strip().removesuffix(";").rstrip()


def test_the_corpus_is_there():
    assert len(CORPUS) >= 22 + 30


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("delete from public.orders", "start with SELECT"),
        ("select 1; drop table public.orders", "more than one statement"),
        ("select * into new_table from public.orders", "INTO"),
        ("with d as (delete from t returning *) select * from d", "DELETE"),
        ("select 1 /* unterminated", "unterminated"),
        ("select 'oops", "unterminated"),
        ("", "start with SELECT"),
        ("vacuum", "start with SELECT"),
    ],
)
def test_everything_else_is_refused_with_a_reason(sql, reason):
    with pytest.raises(QueryNotAllowed, match=reason):
        check_read_only_select(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        # Data-modifying CTEs, in every form a CTE body takes.
        ("with d as (delete from t returning *) select * from d", "DELETE as a statement keyword"),
        ("with d as materialized (delete from t returning *) select * from d", "DELETE"),
        ("with d as not materialized (DELETE t returning *) select * from d", "DELETE"),
        ("with u as (update t set a = 0 returning 1) select 1", "UPDATE"),
        ('with u as (update "t" set a = 0 returning 1) select 1', "UPDATE"),
        ("with u as (update only t set a = 0 returning 1) select 1", "UPDATE"),
        ("with i as (insert into t values (1) returning *) select * from i", "INSERT"),
        ("with m as (merge into t using s on t.id = s.id when matched then delete) select 1", "MERGE"),
        ("with a as (select 1), d as (delete from t returning *) select * from d", "DELETE"),
        ("with d as (/* x */ delete -- y\n from t returning *) select * from d", "DELETE"),
        # The statement a WITH clause leads to, including after SEARCH and CYCLE clauses.
        ("with x as (select 1) delete from t", "DELETE"),
        ("with x as (select 1) update t set a = 1", "UPDATE"),
        ("with x as (select 1) insert into t select 1", "INSERT"),
        ("with x as (select 1) merge into t using x on true when matched then delete", "MERGE"),
        (
            "with recursive r as (select 1 as n union all select n + 1 from r where n < 2) "
            "search depth first by n set o delete from t",
            "DELETE",
        ),
        (
            "with recursive r as (select 1 as n union all select n + 1 from r where n < 2) "
            "cycle n set is_cycle to true default false using path delete from t",
            "DELETE",
        ),
        ("with x as (select 1) select 1 from x union all (delete from t returning 1)", "DELETE"),
        # SELECT ... INTO creates a table.
        ("select * into newtable from t", "INTO"),
        ("select * into temp newtable from t", "INTO"),
        ("select a, b into unlogged table newtable from t", "INTO"),
        ("select * from t into newtable", "INTO"),
        # Locking clauses.
        ("select * from t for update", "FOR UPDATE"),
        ("select * from t FOR UPDATE OF t NOWAIT", "FOR UPDATE"),
        ("select * from t for no key update", "FOR NO KEY UPDATE"),
        ("select * from t for share skip locked", "FOR SHARE"),
        ("select * from t for key share", "FOR KEY SHARE"),
        ("select * from t for /* */ update", "FOR UPDATE"),
        # A second statement, whatever it is.
        ("select 1; comment on table t is 'x'", "more than one statement"),
        ("select lock from t; lock table t", "more than one statement"),
        ("select comment from t; comment on column t.comment is 'x'", "more than one statement"),
        ("select release from t; release savepoint s", "more than one statement"),
        (
            "select import from t; import foreign schema s from server x into public",
            "more than one statement",
        ),
        # A statement that is not a SELECT.
        ("lock table t", "start with SELECT .*LOCK"),
        ("comment on table t is 'x'", "start with SELECT .*COMMENT"),
        ("(delete from t returning *)", "start with SELECT .*DELETE"),
        # A data-modifying keyword where a statement could start is refused even if the server might
        # read it as a name: the gate does not guess.
        ("select 1 delete from t", "DELETE"),
        ("select 'x' delete from t", "DELETE"),
        ("select id from t where (update is null)", "UPDATE"),
        ("select id from t order by delete desc", "DELETE"),
        ("select 1delete from t", "DELETE"),
    ],
)
def test_data_modifying_statements_and_clauses_are_refused(sql, reason):
    with pytest.raises(QueryNotAllowed, match=reason):
        check_read_only_select(sql)


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("select id from t order by update desc", 'quote it ("update") or qualify it (t.update)'),
        ("with x as (select 1) delete from t", 'quote it ("delete") or qualify it (t.delete)'),
        ("select * into n from t", "remove the INTO clause"),
        ("select * from t for update", "remove it"),
        ("select pg_sleep(1)", "remove the call"),
        ("select 1; select 2", "exactly one SELECT"),
        ("select (1", "close each '('"),
        ("select 'x", "close it"),
        ("select 1 /* x", "close it"),
        ("select $a$ x", "close it with $a$"),
        ("lock table t", "give one read-only SELECT"),
        ('select U&"\\0070g_sleep"(1)', "write the name plainly"),
    ],
)
def test_a_refusal_says_how_to_fix_it(sql, hint):
    with pytest.raises(QueryNotAllowed) as refused:
        check_read_only_select(sql)
    assert hint in str(refused.value)
