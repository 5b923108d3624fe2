"""Drives an exported phlo project on the real Dagster engine, for
tests/integration/dagster_engine.rs: loads `definitions.py` from DIR, materializes every
asset on an ephemeral instance (the unpartitioned ones in one run, then each partitioned
one for PARTITION), and prints what Dagster recorded as JSON:
{"runs": [{"success", "steps": [step keys in start order], "materialized": [{"key",
"metadata"}], "checks": [{"asset", "name", "passed"}], "logs": [text], "failed_steps": [...]}],
"tables": {name: rows}} — `tables` is the SQLite warehouse WAREHOUSE, dumped sorted.

usage: drive.py DIR PARTITION WAREHOUSE OUT (the JSON goes to the file OUT: Dagster logs on stdout)
       drive.py --dump WAREHOUSE OUT (only the tables)
"""

import importlib.util
import json
import sqlite3
import sys
import warnings

warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402


def load(path):
    spec = importlib.util.spec_from_file_location("phlo_definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(result):
    out = {"run_id": result.run_id, "success": result.success, "steps": [], "materialized": [], "checks": [], "logs": [], "failed_steps": []}
    for e in result.all_events:
        t = e.event_type_value
        if t == "STEP_START":
            out["steps"].append(e.step_key)
        elif t == "STEP_FAILURE":
            out["failed_steps"].append(e.step_key)
        elif t == "ASSET_MATERIALIZATION":
            m = e.event_specific_data.materialization
            meta = {k: getattr(v, "value", str(v)) for k, v in m.metadata.items()}
            out["materialized"].append({"key": m.asset_key.to_user_string(), "metadata": json.loads(json.dumps(meta, default=str))})
        elif t == "ASSET_CHECK_EVALUATION":
            c = e.event_specific_data
            out["checks"].append({"asset": c.asset_key.to_user_string(), "name": c.check_name, "passed": c.passed})
    return out


def dump(warehouse):
    tables = {}
    try:
        db = sqlite3.connect(f"file:{warehouse}?mode=ro", uri=True)
        # the data tables; phlo's own (`_phlo_steps`: which run step wrote, `_phlo_state`) hold run ids
        query = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND substr(name, 1, 6) != '_phlo_' ORDER BY name"
        )
        for (name,) in db.execute(query):
            rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
            tables[name] = sorted([list(map(str, r)) for r in rows])
    except sqlite3.Error as e:
        tables = {"__error__": str(e)}
    return tables


def main():
    if sys.argv[1] == "--dump":
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            json.dump(dump(sys.argv[2]), f)
        return
    directory, partition, warehouse, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    module = load(f"{directory}/definitions.py")
    doc = module._DOC
    assets = module._assets
    resources = {"pipes": dg.PipesSubprocessClient(cwd=doc["project_dir"])}
    instance = dg.DagsterInstance.ephemeral()
    runnable = [a for a in doc["assets"] if not a["external"]]
    plain = [dg.AssetKey(a["path"]) for a in runnable if a["partitions"] is None]
    parted = [dg.AssetKey(a["path"]) for a in runnable if a["partitions"] is not None]
    runs = []
    result = dg.materialize(assets, selection=plain, instance=instance, resources=resources, raise_on_error=False)
    runs.append(record(result))
    for key in parted:
        result = dg.materialize(
            assets, selection=[key], instance=instance, resources=resources, partition_key=partition, raise_on_error=False
        )
        runs.append(record(result))
    # phlo's log lines as Dagster stored them
    logs = []
    for r in instance.get_runs():
        for entry in instance.all_logs(r.run_id):
            if entry.user_message and entry.dagster_event is None:
                logs.append(entry.user_message)
    tables = dump(warehouse)
    # each schedule as Dagster holds it, evaluated at a tick
    from datetime import datetime, timezone

    schedules = []
    for sched in module.defs.schedules or []:
        tick = datetime(2024, 6, 3, 0, 30, tzinfo=timezone.utc)
        entry = {"name": sched.name, "cron": sched.cron_schedule, "timezone": sched.execution_timezone}
        try:
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=tick, repository_def=module.defs.get_repository_def()
            )
            data = sched.evaluate_tick(context)
            entry["partition_keys"] = [r.partition_key for r in (data.run_requests or [])]
        except Exception as e:  # reported, compared by the test
            entry["error"] = f"{type(e).__name__}: {e}"
        schedules.append(entry)
    partition_keys = {}
    for a in doc["assets"]:
        if a["partitions"] is not None:
            partition_keys["/".join(a["path"])] = module._partitions(a["partitions"]).get_partition_keys()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"runs": runs, "logs": logs, "tables": tables, "partition_keys": partition_keys, "schedules": schedules}, f)


if __name__ == "__main__":
    main()
