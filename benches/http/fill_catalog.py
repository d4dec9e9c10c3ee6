#!/usr/bin/env python3
"""Grows the `files` table of a (running) filegate catalog to TOTAL rows, for scenario 7.

usage: fill_catalog.py CATALOG.sqlite3 TEMPLATE_FILE_ID TOTAL
The new rows copy the template row with fresh ids and object keys `bench/N`; they share
its blob without counting references, so this catalog is for benchmarking only.
"""
import sqlite3, sys

path, template, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path, timeout=30, isolation_level=None)
db.execute("PRAGMA busy_timeout = 30000")
have = db.execute("SELECT count(*) FROM files").fetchone()[0]
need = total - have
if need > 0:
    cols = [r[1] for r in db.execute("PRAGMA table_info(files)")]
    sel = []
    for c in cols:
        if c == "id":
            sel.append("printf('ffff%020x', n)")
        elif c == "object_key":
            sel.append("'bench/' || n")
        else:
            sel.append(c)
    db.execute("BEGIN IMMEDIATE")
    # Rows numbered after those already added, so repeated calls only grow the table.
    start = db.execute("SELECT count(*) FROM files WHERE object_key LIKE 'bench/%'").fetchone()[0]
    db.execute(
        f"""WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n < ?)
            INSERT INTO files ({', '.join(cols)})
            SELECT {', '.join(sel)} FROM s, files WHERE files.id = ?""",
        (start + 1, start + need, template),
    )
    db.execute("COMMIT")
    # As a catalog that grew over time would be: its WAL folded into the database.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(db.execute("SELECT count(*) FROM files").fetchone()[0])
