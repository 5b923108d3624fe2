"""The container side of Dagster Pipes, without a container runtime, for
tests/integration/dagster_engine.rs: a Dagster asset runs `phlo run` the way
`PipesDockerClient` and `PipesK8sClient` run it in a container — the context passed in the
`DAGSTER_PIPES_CONTEXT` variable itself (`{"data": …}`), messages read back from the process's
output (`{"stdio": "stderr"}`) by dagster-docker's own log reader — and prints what Dagster
recorded as JSON: {"success", "materialized": [{"key", "metadata"}], "checks": [...], "logs": [...]}.

usage: container_protocol.py PHLO PROJECT KEY OUT
"""

import json
import os
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402
from dagster_docker.pipes import PipesDockerLogsMessageReader  # noqa: E402

phlo, project, key, out = sys.argv[1:5]


class Finished:
    """What the log reader reads from a container: its output, line by line."""

    def __init__(self, lines):
        self.lines = lines

    def logs(self, **_):
        return iter(self.lines)


@dg.multi_asset(
    name="step",
    specs=[dg.AssetSpec(key=dg.AssetKey(key.split(".")))],
    check_specs=[dg.AssetCheckSpec(name="not_null_id", asset=dg.AssetKey(key.split(".")))],
)
def step(context: dg.AssetExecutionContext):
    reader = PipesDockerLogsMessageReader()
    with dg.open_pipes_session(
        context=context,
        context_injector=dg.PipesEnvContextInjector(),
        message_reader=reader,
        extras={"phlo_key": key},
    ) as session:
        env = {**os.environ, **session.get_bootstrap_env_vars()}
        command = [phlo, "--project", project, "run", "--select", key, "--run-id", context.run.run_id]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        reader.consume_docker_logs(Finished(done.stdout.splitlines() + done.stderr.splitlines()))
        if done.returncode != 0:
            raise dg.Failure(description=f"phlo exited with {done.returncode}")
    yield from session.get_results()


instance = dg.DagsterInstance.ephemeral()
result = dg.materialize([step], instance=instance, raise_on_error=False)
records = instance.all_logs(result.run_id)
seen = {"success": result.success, "materialized": [], "checks": [], "logs": []}
for r in records:
    e = r.dagster_event
    if e is not None and e.event_type_value == "ASSET_MATERIALIZATION":
        m = e.event_specific_data.materialization
        metadata = {k: getattr(v, "value", str(v)) for k, v in m.metadata.items()}
        seen["materialized"].append({"key": m.asset_key.to_user_string(), "metadata": metadata})
    elif e is not None and e.event_type_value == "ASSET_CHECK_EVALUATION":
        c = e.event_specific_data
        seen["checks"].append({"name": c.check_name, "passed": c.passed})
    elif e is None and r.user_message:
        seen["logs"].append(r.user_message)
with open(out, "w", encoding="utf-8") as f:
    json.dump(seen, f, default=str)
