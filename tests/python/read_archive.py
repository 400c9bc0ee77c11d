"""Reads an agentbus audit archive with DuckDB (another Parquet implementation) and
prints one JSON object per row: topic, partition, offset, key, value (base64), error,
headers, and the hive columns date and hour taken from the path (hour as a number:
DuckDB reads `hour=00`…`hour=09` as text, later hours as numbers)."""
import base64
import json
import sys

import duckdb


def b64(v):
    return None if v is None else base64.b64encode(bytes(v)).decode()


def main():
    pattern = sys.argv[1]
    rows = duckdb.sql(
        "SELECT topic, partition, \"offset\", epoch_ms(timestamp) AS ts, key, value, error, "
        "headers, CAST(date AS VARCHAR) AS date, CAST(hour AS INTEGER) AS hour "
        f"FROM read_parquet('{pattern}', hive_partitioning = true) "
        "ORDER BY topic, partition, \"offset\""
    ).fetchall()
    for topic, partition, offset, ts, key, value, error, headers, date, hour in rows:
        print(json.dumps({
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": ts,
            "key": b64(key),
            "value": b64(value),
            "error": error,
            "headers": [[h["name"], b64(h["value"])] for h in (headers or [])],
            "date": date,
            "hour": hour,
        }))


if __name__ == "__main__":
    main()
