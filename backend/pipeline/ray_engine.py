"""``--engine ray``: the same extraction on a Ray cluster (Ray Data), with the same table.

Shape of a run::

    discovery (driver) → Dataset of image references → decode + exact preprocessing (CPU tasks)
        → inference (actor pool, one ONNX Runtime session per actor) → rows → shards (driver)
        → final table in discovery order (driver)

The driver does what the local engine does before the first image — validation, weights, the ONNX export
(once; workers get the model's bytes through the object store and never need torch) — and after the last
one — the table in every format, the master table, the errors file and the provenance (with the
cluster's description), through the same functions.  Decoding and inference run the local engine's own
extractor code (:mod:`radfeat.pipeline.ray_workers`), so the numbers, and the table's bytes, are the same.

Images are read by path: every worker must see the input folder at the same path (shared storage: NFS,
a parallel file system, the same volume mounted on every pod).  A file a worker cannot read is an error
line, as locally.  Rows are kept in shards (:mod:`radfeat.output.shards`): Ctrl-C, a cancel or a crash
keep the finished shards and the same command resumes.  Ray retries the tasks and restarts the actors of a
worker that dies mid-run; each image's result is recorded once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radfeat.extractors.base import Extractor
from radfeat.options import ExtractOptions
from radfeat.output.columns import sidecar
from radfeat.output.formats import write_errors, write_json
from radfeat.output.publish import provenance, publish_table
from radfeat.output.shards import ShardStore
from radfeat.pipeline.progress import Progress, Summary
from radfeat.pipeline.ray_cluster import Cluster, Plan, connect, plan, release
from radfeat.pipeline.run import RunSetup, account_for_inputs, list_skipped, prepare_run

MAX_BLOCKS = 10_000  # blocks in the dataset of image references
SHARD_BATCHES = 4  # images per shard = 4 batches: small enough to lose little on a cancel


def extract_ray(opts: ExtractOptions, report: Callable[[Progress], None], cancel: threading.Event,
                log: Callable[[str], None]) -> Summary:
    """Run ``opts`` (already validated, ``engine == "ray"``) on Ray; see the module docstring."""
    t_start = time.perf_counter()
    setup = prepare_run(opts, report, log, on_driver=True)
    ex, output, total = setup.ex, setup.output, len(setup.found.images)
    list_skipped(setup.found, output, log)
    skipped = [(str(ref.path), reason) for ref, reason in setup.headers.skipped]
    if skipped:
        log(f"{len(skipped)} image(s) skipped: not one of the chosen views ({', '.join(opts.views or [])})")
    store = ShardStore(output, setup.headers.refs, max(1, ex.batch_size * SHARD_BATCHES), setup.columns,
                       setup.fingerprint, opts.resume, log, options=opts.to_dict())
    resumed = store.images_done()

    report(Progress("preparing model", total=total, message="Connecting to Ray"))
    cluster = connect(opts.ray_address, log)
    try:
        work = plan(cluster, opts.device, opts.threads)
        log(f"Ray cluster: {cluster.nodes} node(s), {cluster.cpus:g} CPU(s), {cluster.gpus:g} GPU(s); "
            f"{work.actors} inference actor(s) × {work.threads} thread(s)")
        log(f"{total} image(s) found, {resumed} already done; {ex.start_line()}")
        run = _RayRun(opts, ex, store, work, report, cancel, log, total, resumed, skipped)
        run.execute()
    finally:
        release()
    return run.finish(setup, cluster, work, t_start)


class _RayRun:
    """The streaming part of one run: build the dataset, record the results, then write the table."""

    def __init__(self, opts: ExtractOptions, ex: Extractor, store: ShardStore, work: Plan,
                 report: Callable[[Progress], None], cancel: threading.Event, log: Callable[[str], None],
                 total: int, resumed: int, skipped: list[tuple[str, str]]) -> None:
        self.opts, self.ex, self.store, self.work = opts, ex, store, work
        self.report, self.cancel, self.log = report, cancel, log
        self.total, self.resumed, self.skipped = total, resumed, skipped
        self.done = resumed + len(skipped)
        self.errors: list[dict[str, str]] = [{"path": p, "reason": r} for p, r in skipped]
        self.nodes: set[str] = set()
        self.providers: set[str] = set()
        self.elapsed = 0.0

    def _dataset(self) -> Any:
        import ray
        import ray.data
        from radfeat.pipeline.ray_workers import InferenceActor, decode_batch, detach, image_row

        clone, model_path = detach(self.ex)
        model_ref = ray.put(Path(model_path).read_bytes()) if model_path else None
        self._keep = model_ref  # the actors' constructor argument must outlive any actor restart
        todo = self.store.todo()
        images = self.store.images
        bs = self.ex.batch_size
        # blocks of about one shard each (at most MAX_BLOCKS): few tasks for Ray Data to schedule (blocks of one
        # batch each were no faster on 2 cores)
        blocks = max(1, min(len(todo) // max(1, self.store.size), MAX_BLOCKS)) if todo else 1
        ds = ray.data.from_items([image_row(pos, images[pos]) for pos in todo], override_num_blocks=blocks)
        ds = ds.map_batches(decode_batch, batch_size=bs, batch_format="numpy", fn_kwargs={"loader": clone},
                            num_cpus=self.work.decode_cpus)
        w = self.work
        n_keys = self.opts.depth + 1
        return ds.map_batches(
            InferenceActor, batch_size=bs, batch_format="numpy",
            fn_constructor_args=(clone, model_ref, self.opts.device, w.threads, n_keys),
            compute=ray.data.ActorPoolStrategy(size=w.actors), num_cpus=w.actor_cpus, num_gpus=w.actor_gpus or None)

    def execute(self) -> None:
        if not self.store.todo():
            return
        t0 = time.perf_counter()
        self.report(Progress("extracting", done=self.done, total=self.total,
                             message=f"{self.total - self.done} image(s) to process"))
        batches = iter(self._dataset().iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1))
        try:
            for batch in batches:
                self._record(batch)
                self.elapsed = time.perf_counter() - t0
                rate = (self.done - self.resumed - len(self.skipped)) / self.elapsed if self.elapsed > 0 else 0.0
                eta = (self.total - self.done) / rate if rate > 0 else None
                self.report(Progress("extracting", done=self.done, total=self.total, failed=len(self.errors),
                                     images_per_s=rate, eta_s=eta, errors=self.errors))
                if self.cancel.is_set():
                    break
        finally:
            batches.close()  # stops Ray Data's executor now, not whenever the iterator is collected

    def _record(self, batch: dict[str, Any]) -> None:
        for pos, text, error, line, node, provider in zip(batch["pos"], batch["text"], batch["error"],
                                                          batch["log"], batch["node"], batch["provider"], strict=True):
            if line:
                for msg in str(line).splitlines():
                    self.log(msg)
            if not self.store.add(int(pos), str(text), str(error)):
                continue  # a result already recorded (a retried batch)
            self.done += 1
            self.nodes.add(str(node))
            self.providers.add(str(provider))
            if error:
                path = str(self.store.images[int(pos)].path)
                self.errors.append({"path": path, "reason": str(error)})
                self.log(f"Skipped {path}: {error}")

    def finish(self, setup: RunSetup, cluster: Cluster, work: Plan, t_start: float) -> Summary:
        """Errors file, then (unless cancelled) the final table and the provenance, as the local engine."""
        opts, store, output = self.opts, self.store, setup.output
        processed = self.done - self.resumed - len(self.skipped)
        rate = processed / self.elapsed if self.elapsed > 0 and processed else 0.0
        errors = store.all_errors()
        listed = self.skipped + errors
        errors_path, prov_path = sidecar(output, ".errors.csv"), sidecar(output, ".json")
        self.ex.provider = ", ".join(sorted(self.providers)) or self.ex.provider
        summary = Summary(output=str(output), errors_path=str(errors_path), provenance_path=str(prov_path),
                          ok=sum(store.ok.values()), failed=len(errors), skipped=len(self.skipped),
                          resumed=self.resumed, total=self.total,
                          cancelled=self.cancel.is_set() and not store.complete(), images_per_s=rate,
                          errors=[{"path": p, "reason": r} for p, r in listed], provider=self.ex.provider)
        account_for_inputs(summary, setup.found, store.changed, 0)  # an image gone since shifts the shards: done again
        write_errors(errors_path, listed)
        if not store.complete() and not self.cancel.is_set():
            from radfeat.pipeline.ray_cluster import RayEngineError

            raise RayEngineError(f"the Ray job ended with {len(store.todo())} image(s) without a result; "
                                 "run again to compute them")
        if not store.complete():
            summary.seconds = time.perf_counter() - t_start
            self.log(f"Cancelled: {store.images_done()} image(s) kept in {store.dir}; run again with the same "
                     "options to resume")
            self.report(Progress("cancelled", done=self.done, total=self.total, failed=len(errors)))
            return summary
        self.report(Progress("writing", done=self.done, total=self.total, failed=len(errors),
                             message=f"Writing {output.name}"))
        src = store.assemble()
        publish_table(opts, self.ex, src, store.columns, output, summary, setup.headers, self.log)
        store.discard()
        self.ex.finish(summary)
        summary.seconds = time.perf_counter() - t_start
        prov = provenance(opts, self.ex, summary, work.threads)
        prov["engine"] = {"name": "ray", "cluster": cluster.to_dict(), "plan": work.to_dict(),
                          "inference_nodes": len(self.nodes), "shard_images": store.size}
        write_json(prov_path, prov)
        self.report(Progress("done", done=self.done, total=self.total, failed=len(errors), images_per_s=rate,
                             eta_s=0.0, message=f"Wrote {output}"))
        self.log(f"Wrote {output}: {summary.ok} row(s), {summary.failed} failed, {rate:.1f} images/s (Ray)")
        return summary

