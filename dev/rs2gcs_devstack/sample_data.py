"""A sample dataset of realistic shape for the demo and the end-to-end tests.

Generated inside PostgreSQL with ``generate_series`` (fast, no client round trips) and fully
deterministic, so row counts and values can be checked after a sync. It covers the usual types
(bigint, integer, numeric, real, double, boolean, char, varchar, text, date, timestamp, timestamptz,
json) with NULLs, and text with commas, quotes, newlines, backslashes and Unicode.
"""

from __future__ import annotations

from dataclasses import dataclass

ORDERS_ROWS = 120_000
CUSTOMERS_ROWS = 5_000
PRODUCTS_ROWS = 500

# Awkward text values cycled through the text columns: delimiters, quotes, newlines, backslashes,
# Unicode, emoji and the empty string (distinct from NULL).
_AWKWARD = [
    "plain",
    "comma, separated",
    'double "quoted"',
    "single 'quoted'",
    "line one\nline two",
    "back\\slash",
    "Ünïcödé ßtraße",
    "日本語テキスト",
    "emoji 🚀✨",
    "",
]


def _awkward_case(expression: str) -> str:
    literals = ", ".join(
        "E'" + v.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'" for v in _AWKWARD
    )
    return f"(ARRAY[{literals}])[1 + ({expression}) % {len(_AWKWARD)}]"


SCHEMA_SQL = f"""
DROP TABLE IF EXISTS public.orders, public.customers, public.products;

CREATE TABLE public.customers (
    customer_id   bigint PRIMARY KEY,
    name          varchar(200) NOT NULL,
    email         varchar(320),
    country       char(2),
    birth_date    date,
    is_active     boolean,
    credit_limit  numeric(12, 2),
    created_at    timestamptz NOT NULL,
    notes         text
);
INSERT INTO public.customers
SELECT g,
       'Customer ' || g || ' ' || {_awkward_case("g")},
       CASE WHEN g % 17 = 0 THEN NULL ELSE 'user' || g || '@example.com' END,
       (ARRAY['DE','US','FR','JP','BR','IN'])[1 + g % 6],
       CASE WHEN g % 23 = 0 THEN NULL ELSE date '1940-01-01' + (g * 37) % 25000 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g % 3 <> 0 END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE round(((g * 7919) % 1000000) / 100.0, 2) END,
       timestamptz '2020-01-01 00:00:00+00' + (g * interval '17 minutes 13 seconds'),
       CASE WHEN g % 5 = 0 THEN NULL ELSE {_awkward_case("g + g / 5")} END
FROM generate_series(1, {CUSTOMERS_ROWS}) AS g;

CREATE TABLE public.products (
    sku          varchar(32) PRIMARY KEY,
    title        text NOT NULL,
    price        numeric(10, 2) NOT NULL,
    weight_kg    double precision,
    rating       real,
    attributes   json,
    launched_on  date
);
INSERT INTO public.products
SELECT 'SKU-' || lpad(g::text, 6, '0'),
       'Product ' || g || ', ' || {_awkward_case("g * 3")},
       round((((g * 104729) % 99999) + 99) / 100.0, 2),
       CASE WHEN g % 9 = 0 THEN NULL ELSE (g % 500) / 7.0 END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE ((g % 50) / 10.0)::real END,
       json_build_object('color', (ARRAY['red','green','blue'])[1 + g % 3], 'size', g % 7, 'label',
                         {_awkward_case("g")}),
       date '1965-06-01' + (g * 97) % 30000
FROM generate_series(1, {PRODUCTS_ROWS}) AS g;

CREATE TABLE public.orders (
    order_id     bigint PRIMARY KEY,
    customer_id  bigint NOT NULL,
    sku          varchar(32),
    quantity     integer NOT NULL,
    amount       numeric(14, 2) NOT NULL,
    discount     real,
    status       varchar(16) NOT NULL,
    order_date   date NOT NULL,
    placed_at    timestamp NOT NULL,
    updated_at   timestamptz NOT NULL,
    note         text
);
INSERT INTO public.orders
SELECT g,
       1 + (g * 31) % {CUSTOMERS_ROWS},
       CASE WHEN g % 29 = 0 THEN NULL ELSE 'SKU-' || lpad((1 + g % {PRODUCTS_ROWS})::text, 6, '0') END,
       1 + g % 9,
       round((((g * 2654435761) % 10000000) + 1) / 100.0, 2),
       CASE WHEN g % 7 = 0 THEN NULL ELSE ((g % 30) / 100.0)::real END,
       (ARRAY['placed','paid','shipped','delivered','returned'])[1 + g % 5],
       date '2026-01-01' + (g % 320),
       timestamp '2026-01-01 00:00:00' + (g * interval '3 minutes 51 seconds'),
       timestamptz '2026-01-01 00:00:00+00' + g * interval '3 minutes 51 seconds'
           + (g % 97) * interval '1 minute',
       CASE WHEN g % 3 = 0 THEN NULL ELSE {_awkward_case("g")} END
FROM generate_series(1, {ORDERS_ROWS}) AS g;

ANALYZE public.customers, public.products, public.orders;
"""

REVENUE_QUERY = (
    "select order_date, count(*) as orders, sum(amount)::numeric(18, 2) as revenue "
    "from public.orders group by 1 order by 1"
)


@dataclass(frozen=True)
class SampleTable:
    """A table of the sample dataset, as a tenant entry names it, with its row-count query."""

    name: str
    query: str | None
    count_sql: str


SAMPLE_TABLES: tuple[SampleTable, ...] = (
    SampleTable("public.customers", None, "select count(*) from public.customers"),
    SampleTable("public.products", None, "select count(*) from public.products"),
    SampleTable("public.orders", None, "select count(*) from public.orders"),
    SampleTable("daily_revenue", REVENUE_QUERY, f"select count(*) from ({REVENUE_QUERY}) q"),
)


def grant_sql(role: str) -> str:
    """Let the connection's login role read the sample tables."""
    return (
        f'GRANT USAGE ON SCHEMA public TO "{role}"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}";'
    )
