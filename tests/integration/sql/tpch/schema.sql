-- TPC-H schema (the eight tables with the specification's column names and types) and a tiny
-- deterministic data set: the 5 regions and 25 nations of the specification, and a few rows per other
-- table whose values hit the predicates of the 22 queries (BRASS parts in EUROPE, BUILDING customers,
-- 'forest' part names, 'Customer ... Complaints' suppliers, ...), so that most queries return rows.
CREATE TABLE region (
    r_regionkey integer NOT NULL PRIMARY KEY,
    r_name char(25) NOT NULL,
    r_comment varchar(152)
);
CREATE TABLE nation (
    n_nationkey integer NOT NULL PRIMARY KEY,
    n_name char(25) NOT NULL,
    n_regionkey integer NOT NULL REFERENCES region,
    n_comment varchar(152)
);
CREATE TABLE part (
    p_partkey integer NOT NULL PRIMARY KEY,
    p_name varchar(55) NOT NULL,
    p_mfgr char(25) NOT NULL,
    p_brand char(10) NOT NULL,
    p_type varchar(25) NOT NULL,
    p_size integer NOT NULL,
    p_container char(10) NOT NULL,
    p_retailprice decimal(15, 2) NOT NULL,
    p_comment varchar(23) NOT NULL
);
CREATE TABLE supplier (
    s_suppkey integer NOT NULL PRIMARY KEY,
    s_name char(25) NOT NULL,
    s_address varchar(40) NOT NULL,
    s_nationkey integer NOT NULL REFERENCES nation,
    s_phone char(15) NOT NULL,
    s_acctbal decimal(15, 2) NOT NULL,
    s_comment varchar(101) NOT NULL
);
CREATE TABLE partsupp (
    ps_partkey integer NOT NULL REFERENCES part,
    ps_suppkey integer NOT NULL REFERENCES supplier,
    ps_availqty integer NOT NULL,
    ps_supplycost decimal(15, 2) NOT NULL,
    ps_comment varchar(199) NOT NULL,
    PRIMARY KEY (ps_partkey, ps_suppkey)
);
CREATE TABLE customer (
    c_custkey integer NOT NULL PRIMARY KEY,
    c_name varchar(25) NOT NULL,
    c_address varchar(40) NOT NULL,
    c_nationkey integer NOT NULL REFERENCES nation,
    c_phone char(15) NOT NULL,
    c_acctbal decimal(15, 2) NOT NULL,
    c_mktsegment char(10) NOT NULL,
    c_comment varchar(117) NOT NULL
);
CREATE TABLE orders (
    o_orderkey integer NOT NULL PRIMARY KEY,
    o_custkey integer NOT NULL REFERENCES customer,
    o_orderstatus char(1) NOT NULL,
    o_totalprice decimal(15, 2) NOT NULL,
    o_orderdate date NOT NULL,
    o_orderpriority char(15) NOT NULL,
    o_clerk char(15) NOT NULL,
    o_shippriority integer NOT NULL,
    o_comment varchar(79) NOT NULL
);
CREATE TABLE lineitem (
    l_orderkey integer NOT NULL REFERENCES orders,
    l_partkey integer NOT NULL REFERENCES part,
    l_suppkey integer NOT NULL REFERENCES supplier,
    l_linenumber integer NOT NULL,
    l_quantity decimal(15, 2) NOT NULL,
    l_extendedprice decimal(15, 2) NOT NULL,
    l_discount decimal(15, 2) NOT NULL,
    l_tax decimal(15, 2) NOT NULL,
    l_returnflag char(1) NOT NULL,
    l_linestatus char(1) NOT NULL,
    l_shipdate date NOT NULL,
    l_commitdate date NOT NULL,
    l_receiptdate date NOT NULL,
    l_shipinstruct char(25) NOT NULL,
    l_shipmode char(10) NOT NULL,
    l_comment varchar(44) NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber)
);

INSERT INTO region VALUES
    (0, 'AFRICA', 'r0'), (1, 'AMERICA', 'r1'), (2, 'ASIA', 'r2'), (3, 'EUROPE', 'r3'), (4, 'MIDDLE EAST', 'r4');
INSERT INTO nation VALUES
    (0, 'ALGERIA', 0, 'n'), (1, 'ARGENTINA', 1, 'n'), (2, 'BRAZIL', 1, 'n'), (3, 'CANADA', 1, 'n'),
    (4, 'EGYPT', 4, 'n'), (5, 'ETHIOPIA', 0, 'n'), (6, 'FRANCE', 3, 'n'), (7, 'GERMANY', 3, 'n'),
    (8, 'INDIA', 2, 'n'), (9, 'INDONESIA', 2, 'n'), (10, 'IRAN', 4, 'n'), (11, 'IRAQ', 4, 'n'),
    (12, 'JAPAN', 2, 'n'), (13, 'JORDAN', 4, 'n'), (14, 'KENYA', 0, 'n'), (15, 'MOROCCO', 0, 'n'),
    (16, 'MOZAMBIQUE', 0, 'n'), (17, 'PERU', 1, 'n'), (18, 'CHINA', 2, 'n'), (19, 'ROMANIA', 3, 'n'),
    (20, 'SAUDI ARABIA', 4, 'n'), (21, 'VIETNAM', 2, 'n'), (22, 'RUSSIA', 3, 'n'),
    (23, 'UNITED KINGDOM', 3, 'n'), (24, 'UNITED STATES', 1, 'n');

INSERT INTO part
SELECT g,
       (ARRAY['forest green', 'almond', 'antique', 'khaki', 'lavender'])[g % 5 + 1] || ' part ' || g,
       'Manufacturer#' || (g % 5 + 1),
       'Brand#' || (g % 5 + 1) || (g % 4 + 1),
       (ARRAY['PROMO BRUSHED BRASS', 'ECONOMY ANODIZED STEEL', 'STANDARD POLISHED TIN',
              'MEDIUM POLISHED BRASS', 'LARGE BRUSHED COPPER', 'SMALL PLATED BRASS'])[g % 6 + 1],
       (ARRAY[15, 49, 14, 5, 10, 3])[g % 6 + 1],
       (ARRAY['SM CASE', 'MED BOX', 'LG BOX', 'MED BAG', 'SM PKG', 'LG PACK', 'JUMBO JAR'])[g % 7 + 1],
       900 + g, 'part comment'
FROM generate_series(1, 40) AS g;
INSERT INTO supplier
SELECT g, 'Supplier#' || lpad(g::text, 9, '0'), 'address ' || g, (g * 7) % 25,
       lpad(((g * 7) % 25 + 10)::text, 2, '0') || '-555-000-' || lpad(g::text, 4, '0'), g * 100.5 - 300,
       CASE WHEN g % 6 = 0 THEN 'wary Customer pending Complaints' ELSE 'supplier comment' END
FROM generate_series(1, 12) AS g;
INSERT INTO partsupp
SELECT p, (p + k * 3) % 12 + 1, 100 * (p % 9 + k), 10 + (p * k) % 90, 'partsupp comment'
FROM generate_series(1, 40) AS p, generate_series(0, 3) AS k;
INSERT INTO customer
SELECT g, 'Customer#' || lpad(g::text, 9, '0'), 'address ' || g, g % 25,
       (ARRAY['13', '31', '23', '29', '30', '18', '17', '11'])[g % 8 + 1] || '-555-000-' || lpad(g::text, 4, '0'),
       g * 37.25 - 200, (ARRAY['BUILDING', 'AUTOMOBILE', 'MACHINERY', 'HOUSEHOLD', 'FURNITURE'])[g % 5 + 1],
       'customer comment'
FROM generate_series(1, 30) AS g;
INSERT INTO orders
SELECT g, (g * 7) % 27 + 1, (ARRAY['F', 'O', 'P'])[g % 3 + 1], 1000 + g * 10.5,
       date '1992-01-01' + (g * 53) % 2400,
       (ARRAY['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'])[g % 5 + 1],
       'Clerk#' || lpad((g % 10)::text, 9, '0'), 0,
       CASE WHEN g % 9 = 0 THEN 'special packages requests' ELSE 'order comment' END
FROM generate_series(1, 150) AS g;
INSERT INTO lineitem
SELECT o_orderkey, p, (p + (o_orderkey % 4) * 3) % 12 + 1, n, 1 + (o_orderkey * n) % 50, (1 + (o_orderkey * n) % 50) * (900 + p),
       ((o_orderkey + n) % 11) / 100.0, ((o_orderkey + n) % 9) / 100.0,
       (ARRAY['R', 'A', 'N'])[(o_orderkey + n) % 3 + 1], (ARRAY['F', 'O'])[(o_orderkey + n) % 2 + 1],
       o_orderdate + 1 + (o_orderkey * n) % 60, o_orderdate + 30 + n, o_orderdate + 10 + (o_orderkey * n) % 50,
       (ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'])[(o_orderkey + n) % 4 + 1],
       (ARRAY['AIR', 'AIR REG', 'MAIL', 'SHIP', 'TRUCK', 'RAIL', 'FOB'])[(o_orderkey + n) % 7 + 1],
       'lineitem comment'
FROM orders, generate_series(1, 1 + o_orderkey % 4) AS n, LATERAL (SELECT (o_orderkey * 13 + n * 7) % 40 + 1 AS p) AS pick;
