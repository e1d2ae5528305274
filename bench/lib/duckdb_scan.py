"""DuckDB over Hearth's own segment files: the peer of the storage bench's scans.

Reads a JSON job on stdin: {"files": [...], "table": name, "queries": [{"key", "sql",
"params": [[...], ...], "count", "warmup"}]}. The files are Arrow IPC (Feather v2, LZ4_FRAME)
segments; pyarrow decodes them (DuckDB has no reader of its own for Arrow IPC) and DuckDB
queries the Arrow table in place. Each query runs once with params[0] ("first"), then
`warmup` + `count` times cycling through params. Prints one JSON object, timings in ms.
"""

import json
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc


def ms(t0):
    return (time.perf_counter() - t0) * 1000


def main():
    job = json.load(sys.stdin)

    t0 = time.perf_counter()
    table = pa.concat_tables([ipc.open_file(pa.memory_map(f, "r")).read_all() for f in job["files"]])
    load_ms = ms(t0)
    con = duckdb.connect()
    con.register(job["table"], table)
    connect_ms = ms(t0) - load_ms

    results = {}
    for q in job["queries"]:
        sql, params = q["sql"], q["params"]
        run = lambda i: con.execute(sql, params[i % len(params)]).fetchall()  # noqa: E731
        t1 = time.perf_counter()
        first = run(0)
        first_ms = ms(t1)
        for i in range(q["warmup"]):
            run(i)
        samples = []
        for i in range(q["count"]):
            t1 = time.perf_counter()
            run(i)
            samples.append(ms(t1))
        results[q["key"]] = {"firstMs": first_ms, "samples": samples, "first": first[:20], "last": first[-1] if first else None, "firstCount": len(first)}

    json.dump(
        {
            "duckdb": duckdb.__version__,
            "pyarrow": pa.__version__,
            "rows": table.num_rows,
            "schema": [f"{f.name}: {f.type}" for f in table.schema],
            "loadMs": load_ms,
            "connectMs": connect_ms,
            "queries": results,
        },
        sys.stdout,
        default=str,
    )


if __name__ == "__main__":
    main()
