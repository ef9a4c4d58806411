"""The tests' Ray drivers, run inside the private network namespace.

``ray_driver.py RUNS.json``: several extractions in one process (RUNS.json is a list of ``ExtractOptions``
as JSON); each summary is printed as one JSON line.  ``ray_driver.py --rpc WORKSPACE OPTIONS``: one job of
the real backend, followed with ``job_status``; prints the final status and every status seen.
"""

from __future__ import annotations

import json
import sys

from radfeat.options import ExtractOptions
from radfeat.pipeline.run import extract


def _shards(workspace: str) -> int:
    """Finished shards of the default output (manifests, less the state file)."""
    from pathlib import Path

    folder = Path(workspace) / "DATA" / "extracted_features" / "image_extracted_features.csv.ray-shards"
    return max(0, len(list(folder.glob("*.json"))) - 1)


def rpc_job(workspace: str, options: dict) -> dict:
    """Start ``options`` as a job of the real backend (in this process), cancel it once a shard is written,
    start it again and follow ``job_status`` to the end.  Returns, for both runs, the final status, what the
    polls saw, every progress report the engine made (recorded on its way to the job, so none is missed
    between two polls) and the page's "Resume" list afterwards."""
    import time

    from radfeat.server.app import BackgroundServer
    from radfeat.server.rpc import RpcClient

    reported: list[list] = []

    def recorded(opts, *, progress, cancel, log):
        def report(p) -> None:
            reported.append([p.stage, p.done, p.total])
            progress(p)

        return extract(opts, progress=report, cancel=cancel, log=log)

    runs = []
    with BackgroundServer(workspace, extract_fn=recorded) as srv:
        rpc = RpcClient(srv.url, srv.token)
        for cancel in (True, False):
            reported.clear()
            job = rpc.call("start_extraction", options=options)
            seen = []
            while True:
                st = rpc.call("job_status", job_id=job["job_id"])
                seen.append([st["state"], st["stage"], st["done"], st["total"]])
                if cancel and not st["cancel_requested"] and _shards(workspace) >= 1:
                    rpc.call("cancel_job", job_id=job["job_id"])
                if st["state"] in ("done", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            runs.append({"final": st, "seen": seen, "reported": list(reported),
                         "partial_runs": rpc.call("list_partial_runs")["runs"]})
    return {"runs": runs}


if __name__ == "__main__":
    if sys.argv[1] == "--rpc":
        print(json.dumps(rpc_job(sys.argv[2], json.loads(sys.argv[3]))), flush=True)
        sys.exit(0)
    with open(sys.argv[1], encoding="utf-8") as fh:
        runs = json.load(fh)
    for raw in runs:
        summary = extract(ExtractOptions.from_dict(raw), log=lambda m: print(m, file=sys.stderr, flush=True))
        print(json.dumps(summary.to_dict()), flush=True)
