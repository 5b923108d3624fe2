#!/usr/bin/env python3
"""phlo side by side with its peers, in one sitting, on the same inputs (whole processes).

    python3 benches/side_by_side.py             # ingest and fixed costs (a few minutes)
    python3 benches/side_by_side.py --memory    # also peak RSS on 1 GB inputs (slow; ~3 GB of disk)

Peers: the sqlite3 CLI (`.import`), pandas (`read_csv`/`read_json` + `to_sql`) and `dbt build`
(dbt-sqlite) from the venv benches/peers/setup.sh installs (left out when it cannot be
installed). Builds phlo in release mode first. Each figure is the median of --runs runs, each
on a fresh warehouse; peak RSS is the process's own (wait4). Prints a Markdown table;
benches/README.md keeps the latest one.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "side-by-side"
PHLO = ROOT / "target" / "release" / "phlo"
STATUSES = ["paid", "shipped", "cancelled", "refunded"]


def run(cmd, cwd=None, env=None, stdin=None):
    """Runs a whole process; returns (seconds, peak RSS in MB). Fails loudly on failure."""
    started = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    took = time.perf_counter() - started
    err = p.stderr.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{err[-3000:]}")
    return took, usage.ru_maxrss / 1024


def median(cmd_for_run, runs, fresh=None):
    times, peaks = [], []
    for _ in range(runs):
        if fresh:
            fresh()
        t, m = cmd_for_run()
        times.append(t)
        peaks.append(m)
    return statistics.median(times), max(peaks)


def write_inputs(rows, jsonl_rows=None):
    """The 6-column orders file of benches/ingest.rs, as CSV and as JSON Lines."""
    jsonl_rows = jsonl_rows or rows
    csv, jsonl = WORK / "data" / f"orders-{rows}.csv", WORK / "data" / f"orders-{jsonl_rows}.jsonl"
    csv.parent.mkdir(parents=True, exist_ok=True)
    if not csv.exists():
        with open(csv, "w") as f:
            f.write("order_id,customer_id,product_id,quantity,order_date,status\n")
            for i in range(rows):
                f.write(f"{i},{i * 31 % 5000},{i * 17 % 300},{1 + i % 5},2024-02-{1 + i * 7 % 28:02d},{STATUSES[i % 4]}\n")
    if not jsonl.exists():
        with open(jsonl, "w") as f:
            for i in range(jsonl_rows):
                f.write(
                    f'{{"order_id":{i},"customer_id":{i * 31 % 5000},"product_id":{i * 17 % 300},'
                    f'"quantity":{1 + i % 5},"order_date":"2024-02-{1 + i * 7 % 28:02d}","status":"{STATUSES[i % 4]}"}}\n'
                )
    return csv, jsonl


def phlo_project(name, yaml):
    d = WORK / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "phlo.yaml").write_text("paths: {allow_outside_project: true}\n" + yaml)
    return d


def wipe(d):
    return lambda: shutil.rmtree(d / ".phlo", ignore_errors=True)


def peers_python():
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "benches" / "peers" / "setup.sh")], capture_output=True, text=True, check=True
        )
        return Path(out.stdout.strip().splitlines()[-1]).absolute()
    except subprocess.CalledProcessError as e:
        print(f"(peers not installed: {e.stderr.strip()[-300:]}; pandas and dbt left out)", file=sys.stderr)
        return None


PANDAS_CSV = "import pandas, sqlite3, sys; pandas.read_csv(sys.argv[1]).to_sql('orders', sqlite3.connect(sys.argv[2]), index=False)"
PANDAS_JSONL = "import pandas, sqlite3, sys; pandas.read_json(sys.argv[1], lines=True).to_sql('orders', sqlite3.connect(sys.argv[2]), index=False)"


def ingest(rows, runs, py, results):
    csv, jsonl = write_inputs(rows)
    db = WORK / "peer.db"

    def fresh_db():
        db.unlink(missing_ok=True)

    p_csv = phlo_project("ingest-csv", f"name: ingest\nassets:\n  raw.orders:\n    type: csv\n    path: {csv}\n")
    p_jsonl = phlo_project("ingest-jsonl", f"name: ingest\nassets:\n  raw.orders:\n    type: jsonl\n    path: {jsonl}\n")
    phlo_csv = median(lambda: run([PHLO, "run", "--project", p_csv]), runs, wipe(p_csv))
    sqlite_csv = median(lambda: run(["sqlite3", db, ".mode csv", f".import {csv} orders"]), runs, fresh_db)
    phlo_jsonl = median(lambda: run([PHLO, "run", "--project", p_jsonl]), runs, wipe(p_jsonl))
    results.append((f"CSV {rows:,} rows × 6 → SQLite", "phlo run", phlo_csv, None))
    results.append((f"CSV {rows:,} rows × 6 → SQLite", "sqlite3 .import", sqlite_csv, phlo_csv[0] / sqlite_csv[0]))
    if py:
        pandas_csv = median(lambda: run([py, "-c", PANDAS_CSV, csv, db]), runs, fresh_db)
        results.append((f"CSV {rows:,} rows × 6 → SQLite", "pandas read_csv + to_sql", pandas_csv, phlo_csv[0] / pandas_csv[0]))
    results.append((f"JSON Lines {rows:,} records → SQLite", "phlo run (÷ phlo's CSV)", phlo_jsonl, phlo_jsonl[0] / phlo_csv[0]))
    if py:
        pandas_jsonl = median(lambda: run([py, "-c", PANDAS_JSONL, jsonl, db]), runs, fresh_db)
        results.append(
            (f"JSON Lines {rows:,} records → SQLite", "pandas read_json + to_sql", pandas_jsonl, phlo_jsonl[0] / pandas_jsonl[0])
        )


def fixed_costs(runs, py, results):
    """A project run again (its run store and warehouse there, as a user's are): one warm-up
    run, then the median of `runs`."""
    one = phlo_project("one-command", "name: one\nassets:\n  tiny:\n    type: command\n    program: \"true\"\n")
    wipe(one)()
    run([PHLO, "run", "--project", one])
    results.append(("one `command: true` asset", "phlo run", median(lambda: run([PHLO, "run", "--project", one]), runs), None))
    qs = WORK / "quickstart"
    shutil.rmtree(qs, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "quickstart", qs, ignore=shutil.ignore_patterns(".phlo"))
    run([PHLO, "run", "--project", qs])
    phlo_qs = median(lambda: run([PHLO, "run", "--project", qs]), runs)
    results.append(("quickstart (12 assets, 14 checks)", "phlo run", phlo_qs, None))
    if not py:
        return
    dbt = WORK / "dbt_quickstart"
    shutil.rmtree(dbt, ignore_errors=True)
    shutil.copytree(ROOT / "benches" / "peers" / "dbt_quickstart", dbt)
    (dbt / "seeds").mkdir()
    for name in ["customers", "products", "orders"]:
        shutil.copy(ROOT / "examples" / "quickstart" / "data" / f"{name}.csv", dbt / "seeds" / f"raw_{name}.csv")
    (dbt / "profiles.yml").write_text(
        "quickstart:\n  target: dev\n  outputs:\n    dev:\n      type: sqlite\n      threads: 2\n"
        f"      database: database\n      schema: main\n      schemas_and_paths:\n        main: {dbt}/warehouse.db\n"
        f"      schema_directory: {dbt}\n"
    )
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    dbt_bin = py.parent / "dbt"

    def fresh():
        (dbt / "warehouse.db").unlink(missing_ok=True)

    dbt_run = median(
        lambda: run([dbt_bin, "build", "--profiles-dir", dbt, "--project-dir", dbt, "--quiet"], cwd=dbt, env=env),
        max(1, runs // 2),
        fresh,
    )
    results.append(("quickstart (12 assets, 14 checks)", "dbt build (dbt-sqlite)", dbt_run, phlo_qs[0] / dbt_run[0]))


class Pages(BaseHTTPRequestHandler):
    """A REST series of `pages` pages of `per_page` records, next-URL paginated."""

    pages, per_page = 500, 4000

    def do_GET(self):
        n = int(self.path.split("page=")[1]) if "page=" in self.path else 1
        start = (n - 1) * self.per_page
        recs = ",".join(
            f'{{"id":{i},"customer":{i * 31 % 5000},"note":"{"x" * 180}","at":"2024-02-{1 + i % 28:02d}T10:00:00Z"}}'
            for i in range(start, start + self.per_page)
        )
        nxt = f'"/items?page={n + 1}"' if n < self.pages else "null"
        body = f'{{"data":[{recs}],"next":{nxt}}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def memory(results):
    """Peak RSS of phlo on 1 GB inputs, a 200 MB command output and a 500 MB REST series."""
    # ≈ 1 GB each: ~29 bytes a CSV row, ~113 a JSON line
    csv, jsonl = write_inputs(35_000_000, 9_000_000)
    for kind, path in [("csv", csv), ("jsonl", jsonl)]:
        d = phlo_project(f"memory-{kind}", f"name: m\nassets:\n  raw.orders:\n    type: {kind}\n    path: {path}\n")
        wipe(d)()
        t, m = run([PHLO, "run", "--project", d])
        results.append((f"{path.stat().st_size / 1e9:.2f} GB {kind.upper()} → SQLite", "phlo run (peak RSS)", (t, m), None))
    d = phlo_project(
        "memory-command",
        "name: m\nassets:\n  chatty:\n    type: command\n    program: sh\n"
        "    args: ['-c', 'yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 200000000']\n",
    )
    wipe(d)()
    t, m = run([PHLO, "run", "--project", d])
    results.append(("command printing 200 MB", "phlo run (peak RSS)", (t, m), None))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    d = phlo_project(
        "memory-rest",
        f"name: m\nassets:\n  raw.items:\n    type: rest\n    base_url: http://127.0.0.1:{port}/\n    endpoint: items\n"
        "    records: /data\n    pagination: {style: next_url, next: /next}\n    timeout: 30m\n",
    )
    wipe(d)()
    t, m = run([PHLO, "run", "--project", d])
    server.shutdown()
    mb = Pages.pages * Pages.per_page * 250 / 1e6
    results.append((f"REST series ≈ {mb:.0f} MB ({Pages.pages} pages)", "phlo run (peak RSS)", (t, m), None))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the ingest input (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median; default 5)")
    ap.add_argument("--memory", action="store_true", help="also peak RSS on 1 GB inputs")
    ap.add_argument("--no-build", action="store_true", help="use target/release/phlo as it is")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not shutil.which("sqlite3"):
        sys.exit("the sqlite3 CLI is needed (Debian: apt-get install sqlite3)")
    WORK.mkdir(parents=True, exist_ok=True)
    py = peers_python()
    results = []
    ingest(args.rows, args.runs, py, results)
    fixed_costs(max(args.runs, 15), py, results)
    if args.memory:
        memory(results)
    print("| measured | tool | median | peak RSS | phlo ÷ peer |")
    print("|---|---|---|---|---|")
    for what, tool, (t, m), ratio in results:
        shown = f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"
        r = "" if ratio is None else (f"{ratio:.2f}" if ratio >= 0.01 else f"1/{1 / ratio:.0f}")
        print(f"| {what} | {tool} | {shown} | {m:.0f} MB | {r} |")
    print(json.dumps({"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": args.rows, "runs": args.runs}))


if __name__ == "__main__":
    main()
