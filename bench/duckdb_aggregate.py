"""Runs `kam aggregate-sql --dialect duckdb --source tx` output on a transactions CSV with DuckDB.

Usage: duckdb_aggregate.py TRANSACTIONS.csv QUERY.sql OUT.(parquet|csv)

The CSV is read as text (`all_varchar`, so ids keep their leading zeros and amounts are cast to
DECIMAL(38, 4) by the query itself) through a view named `tx`; the activity table is written as
Parquet or CSV.
"""

import sys

import duckdb

data, query, out = sys.argv[1:4]
con = duckdb.connect()
con.execute(
    f"CREATE VIEW tx AS SELECT * FROM read_csv('{data}', header = true, all_varchar = true, quote = '\"', escape = '\"')"
)
fmt = "(FORMAT parquet)" if out.endswith(".parquet") else "(HEADER, DELIMITER ',')"
con.execute(f"COPY ({open(query, encoding='utf-8').read()}) TO '{out}' {fmt}")
