"""Reference answers for phlo's time conformance test (tests/integration/time_conformance.rs).

Reads cases as JSON on stdin and prints, for each, what the pinned references say:
croniter and Dagster for cron fire times, Dagster for time-window partitions. Installed by
tests/engines/setup-python.sh. The script only asks the references; phlo's test compares.

Input:  {"cron": [{"expr", "tz", "start" (unix seconds), "n"}],
         "partitions": [{"kind", "start", "end", "tz", "week_start", "month_day",
                         "end_offset", "now" (unix seconds)}]}
Output: {"cron": [{"croniter": [unix seconds], "dagster": [unix seconds]}],
         "partitions": [{"keys": [...], "windows": [[start, end] unix seconds], "error": str}]}
"""

import json
import sys
import warnings
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

warnings.filterwarnings("ignore")

import croniter  # noqa: E402
import dagster as dg  # noqa: E402
from dagster._utils.schedules import cron_string_iterator  # noqa: E402


def croniter_next(expr, tz, start, n):
    it = croniter.croniter(expr, datetime.fromtimestamp(start, ZoneInfo(tz)))
    return [int(it.get_next(datetime).timestamp()) for _ in range(n)]


def dagster_next(expr, tz, start, n):
    out = []
    # Dagster's iterator starts at or after its start; phlo's next is strictly after
    for t in cron_string_iterator(start, expr, tz):
        ts = int(t.timestamp())
        if ts > start:
            out.append(ts)
        if len(out) >= n:
            break
    return out


WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


def partitions(case):
    tz = case["tz"]
    kind = case["kind"]
    start = case["start"]
    end = case.get("end")
    kwargs = {"timezone": tz, "end_offset": case.get("end_offset", 0)}
    if end is not None:
        kwargs["end_date"] = end
    if kind == "hourly":
        # Dagster's hourly start format has no `T`
        start = start.replace("T", "-")
        if end is not None:
            kwargs["end_date"] = end.replace("T", "-")
        p = dg.HourlyPartitionsDefinition(start_date=start, **kwargs)
    elif kind == "daily":
        p = dg.DailyPartitionsDefinition(start_date=start, **kwargs)
    elif kind == "weekly":
        p = dg.WeeklyPartitionsDefinition(
            start_date=start, day_offset=WEEKDAYS.index(case.get("week_start", "sunday")), **kwargs
        )
    else:
        p = dg.MonthlyPartitionsDefinition(start_date=start, day_offset=case.get("month_day", 1), **kwargs)
    now = datetime.fromtimestamp(case["now"], timezone.utc)
    keys = p.get_partition_keys(current_time=now)
    windows = []
    for k in keys:
        w = p.time_window_for_partition_key(k)
        windows.append([int(w.start.timestamp()), int(w.end.timestamp())])
    return {"keys": keys, "windows": windows}


def main():
    cases = json.load(sys.stdin)
    out = {"cron": [], "partitions": []}
    for c in cases.get("cron", []):
        out["cron"].append(
            {
                "croniter": croniter_next(c["expr"], c["tz"], c["start"], c["n"]),
                "dagster": dagster_next(c["expr"], c["tz"], c["start"], c["n"]),
            }
        )
    for c in cases.get("partitions", []):
        try:
            out["partitions"].append(partitions(c))
        except Exception as e:  # a definition Dagster refuses: reported, compared by the test
            out["partitions"].append({"keys": [], "windows": [], "error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
