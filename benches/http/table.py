#!/usr/bin/env python3
"""Turns benches/http/run's results (JSON lines) into one Markdown table."""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = {}
for r in rows:
    runs.setdefault(r["scenario"], {}).setdefault(r.get("server", "-"), []).append(r)


def figure(r):
    w = r.get("wrk")
    return (w["bytes"] if r["scenario"] == "3" else w["requests"]) / w["duration_us"] if w else 0


# With ROUNDS > 1 each server has several runs of a scenario: keep the median one.
by = {sc: {srv: sorted(rs, key=figure)[len(rs) // 2] for srv, rs in d.items()} for sc, d in runs.items()}

NAMES = {
    "1": "1 issuing links (nginx: static JSON)",
    "2": "2 4 KiB file via signed link",
    "3": "3 1 GiB file, page-cached",
    "4": "4 random 64 KiB ranges of 1 GiB",
    "5": "5 concurrent slow readers",
    "6": "6 1 GiB upload (vs cp + sync)",
    "8": "8 4 KiB ZIP entry via item link (nginx: file)",
    "9": "9 4 KiB tagged copy, AutoGraph (nginx: file)",
    "10": "10 4 KiB via anti_fraud link (nginx: file)",
}
TARGETS = {"1": ">= 0.5x, >= 20k/s", "2": ">= 1.0x", "3": ">= 0.95x", "4": ">= 1.0x",
           "5": "<= 100 MiB", "6": ">= 0.8x, RSS flat", "8": "(none set)", "9": "(none set)",
           "10": "(none set)"}
ORDER = ["1", "2", "8", "9", "10", "3", "4", "5", "6"]


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def lat(w):
    def f(us):
        return f"{us / 1000:.1f}" if us < 10_000_000 else f"{us / 1e6:.0f}s"
    return f"{f(w['p50_us'])} / {f(w['p99_us'])} ms"


def rate(w, bytes_=False):
    secs = w["duration_us"] / 1e6
    if bytes_:
        return w["bytes"] / secs / 2**20, "MiB/s"
    return w["requests"] / secs, "req/s"


out = ["| scenario | filegate | nginx | ratio | target | p50 / p99 filegate | p50 / p99 nginx "
       "| peak RSS filegate | peak RSS nginx | errors fg / nginx |",
       "|---|---|---|---|---|---|---|---|---|---|"]
for sc in sorted(by, key=lambda s: ORDER.index(s) if s in ORDER else 99):
    d = by[sc]
    name, tgt = NAMES.get(sc, sc), TARGETS.get(sc, "")
    if sc in ("1", "2", "3", "4", "8", "9", "10"):
        fg, ng = d["filegate"]["wrk"], d["nginx"]["wrk"]
        (a, unit), (b, _) = rate(fg, sc == "3"), rate(ng, sc == "3")
        err = lambda w: w["socket_errors"] + w["bad_status"]
        out.append(f"| {name} | {a:,.0f} {unit} | {b:,.0f} {unit} | {a / b:.2f}x | {tgt} | {lat(fg)} "
                   f"| {lat(ng)} | {mib(d['filegate']['rss_kib'])} | {mib(d['nginx']['rss_kib'])} "
                   f"| {err(fg)} / {err(ng)} |")
    elif sc == "5":
        fg, ng = d["filegate"], d["nginx"]
        s1, s2 = fg["slow"], ng["slow"]
        out.append(f"| {name} ({s1['clients']}) | {mib(fg['rss_kib'])} peak RSS | {mib(ng['rss_kib'])} peak RSS "
                   f"| {fg['rss_kib'] / ng['rss_kib']:.2f}x | {tgt} | served {s1['ok']}/{s1['clients']}, "
                   f"{s1['bytes'] / 2**20:.0f} MiB | served {s2['ok']}/{s2['clients']}, "
                   f"{s2['bytes'] / 2**20:.0f} MiB | {mib(fg['rss_kib'])} | {mib(ng['rss_kib'])} | |")
    elif sc == "6":
        r = d["-"]
        a, b = r["bytes"] / r["upload_s"] / 2**20, r["bytes"] / r["cp_s"] / 2**20
        runs = len(r.get("upload_runs", [0]))
        med = f", median of {runs}" if runs > 1 else ""
        out.append(f"| {name} | {a:,.0f} MiB/s ({r['upload_s']:.1f} s{med}) | cp+sync {b:,.0f} MiB/s "
                   f"({r['cp_s']:.1f} s{med}) | {a / b:.2f}x | {tgt} | | | {mib(r['rss_kib'])} "
                   f"(before: {mib(r['rss_before_kib'])}) | | |")
if "7k" in by and "7m" in by:
    # The 1 M catalog is served by a second server ("filegate-1m"; "filegate" in older runs).
    m7 = by["7m"].get("filegate-1m") or by["7m"]["filegate"]
    k, m = by["7k"]["filegate"]["wrk"], m7["wrk"]
    (a, _), (b, _) = rate(m), rate(k)
    out.append(f"| 7 issuing links, 1 M files vs 1 000 | {a:,.0f} req/s (1 M) | {b:,.0f} req/s (1 000) "
               f"| {a / b:.2f}x | >= 0.9x | {lat(m)} | {lat(k)} (1 000) "
               f"| {mib(m7['rss_kib'])} | | |")
print("\n".join(out))
