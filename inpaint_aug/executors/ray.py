"""The Ray executor: the planned chunks as a Ray Dataset, run on an actor pool.

With ``--executor ray`` the rows of a Ray Dataset are the run's unfinished chunks
(:func:`~inpaint_aug.pipeline.execute.unfinished_chunks`, the same ones the local engine runs,
so composition and output are identical). ``map_batches`` hands one row per call to a pool of
:class:`~inpaint_aug.executors.ray_worker.ChunkWorker` actors (``ActorPoolStrategy``; one GPU
per actor on a GPU cluster, else CPUs); each actor loads the model once and runs the local
engine on its chunk, writing finished images under OUT. The driver journals what comes back
as each chunk finishes (in any order), feeds the progress callback, and the run assembles
``annotations.json`` as usual.

* **Start.** ``ray.init`` joins ``--ray-address`` (``auto``: the cluster ``ray start`` began
  here) or starts a local Ray for the run; offline and cache settings of this process
  (``HF_*``, ``TRANSFORMERS_*``, ``OMP_NUM_THREADS``) go to the workers. Before any model
  loads, a task on a worker node reads a token file the driver wrote under
  ``OUT/.inpaint_aug`` and writes one back, which the driver reads: one clear error when OUT
  is not shared.
* **Failures.** A worker process that dies (crash, OOM kill, lost node) is restarted and its
  chunk run again, ``RETRIES`` times (``max_restarts`` and ``max_task_retries``); an actor
  that fails to start (a model that cannot load) stops the run with its error. A bad item is
  a skip, as in a local run.
* **Resume.** Images are journaled by the driver only; whatever a killed driver or worker
  left, the same command continues from the journal, recomputing whole unfinished chunks.

Example:
    >>> stats, seconds_load = execute_ray(ds, tasks, options, journal, None)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.errors import FatalError, ModelError, OutputError
from inpaint_aug.executors.ray_worker import ChunkWorker, answer_token, check_token
from inpaint_aug.files import make_dirs
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.chunks import Chunk
from inpaint_aug.pipeline.engine import EngineStats
from inpaint_aug.pipeline.execute import kept_message, stoppable, unfinished_chunks
from inpaint_aug.pipeline.journal import STATE_DIR, Journal
from inpaint_aug.pipeline.progress import Progress
from inpaint_aug.pipeline.records import Task

log = logging.getLogger(__name__)
INSTALL = 'pip install "inpaint-aug[ray]"'
RETRIES = 3
PASSED_ENV = ("HF_", "TRANSFORMERS_", "OMP_NUM_THREADS", "INPAINT_AUG_")
WORKER = ChunkWorker  # the actor class (tests swap in one that fails)


def require_ray() -> None:
    """Refuse ``--executor ray`` at once when ray is not installed.

    Raises:
        ModelError: ray (with Ray Data) cannot be imported; says how to install it.
    """
    try:
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ModelError(f"--executor ray needs Ray Data ({err}): {INSTALL}") from None


def execute_ray(
    ds: CocoDataset,
    tasks: list[Task],
    options: RunOptions,
    journal: Journal,
    progress: Progress | None,
) -> tuple[EngineStats, float]:
    """Run the unfinished chunks on a Ray actor pool; journal what comes back.

    Returns the figures summed over the actors and their model-loading seconds.

    Raises:
        OutputError: OUT is not shared with the workers.
        FatalError: a worker's fatal error (a model that cannot load, a full disk).
        Interrupted: a signal; what is journaled is kept.
    """
    todo = unfinished_chunks(tasks, options.batch_size, journal.ended)
    if not todo:
        return EngineStats(0.0, 0), 0.0
    started = _init(options.ray_address)
    try:
        resources = _resources(options, len(todo))
        token = _check_shared(Path(options.out).resolve(), resources)
        total = sum(len(t.job.edits) for t in tasks)
        kept = lambda: kept_message(len(journal.ended), len(tasks))  # noqa: E731
        rows = _rows(todo, journal.ended, _settings(options), token, options, resources)
        return stoppable(lambda stop: _drain(rows, tasks, journal, progress, total, stop), kept)
    finally:
        if started:
            import ray

            ray.shutdown()


def _init(address: str | None) -> bool:
    """Join the cluster (or start a local Ray); ``True`` when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
    start = {} if address else {"include_dashboard": False}
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False, **start)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise OutputError(f"--ray-address {address}: cannot join the Ray cluster ({err})") from None
    return True


def _resources(options: RunOptions, chunks: int) -> dict[str, Any]:
    """Each actor's resources and the pool (never more actors than chunks).

    On a cluster with GPUs (and no ``--device cpu``): one GPU per actor, ``--ray-actors`` of
    them, or from one up to one per GPU. Else CPU actors (``--ray-actors``, default one), each
    with an equal share of the cluster's CPUs.
    """
    import ray

    cluster = ray.cluster_resources()
    gpus, cpus = int(cluster.get("GPU", 0)), max(1, int(cluster.get("CPU", 1)))
    if gpus and options.device not in ("cpu", "mps"):
        size = options.ray_actors
        pool = {"size": min(size, chunks)} if size else {"min_size": 1, "max_size": gpus}
        return {"num_gpus": 1, "pool": pool, "device": "cuda"}
    actors = min(options.ray_actors or 1, chunks)
    return {"num_cpus": max(1, cpus // actors), "pool": {"size": actors}, "device": "cpu"}


def _check_shared(out: Path, resources: dict[str, Any]) -> tuple[str, str]:
    """Driver -> worker -> driver: token files under OUT read back on the other side.

    Raises:
        OutputError: a worker cannot read the driver's token, or the driver the worker's.
    """
    import ray

    folder = out / STATE_DIR / "ray"
    make_dirs(folder)
    content, reply = secrets.token_hex(8), secrets.token_hex(8)
    path = folder / f"driver-{content}"
    path.write_text(content, encoding="utf-8")
    needs = {k: v for k, v in resources.items() if k in ("num_gpus", "num_cpus")}
    probe = ray.remote(max_retries=0, **needs)(answer_token)
    try:
        answer = ray.get(probe.remote(str(path), content, reply))
    except ray.exceptions.RayTaskError as err:
        raise _fatal(err) from None
    check_token(answer, reply)
    return str(path), content


def _settings(options: RunOptions) -> dict[str, Any]:
    """The options as the workers rebuild them: every local path made absolute."""
    settings = options.to_dict()
    for key in ("coco", "prompts", "out", "images", "yolo_dir", "model", "lcm_lora"):
        value = settings.get(key)
        if value is not None and (key in ("coco", "prompts", "out") or Path(value).exists()):
            settings[key] = str(Path(value).resolve())
    model = settings["verify"].get("model")
    if model is not None and Path(model).exists():
        settings["verify"]["model"] = str(Path(model).resolve())
    return settings


def _rows(
    todo: list[Chunk],
    ended: set[int],
    settings: dict[str, Any],
    token: tuple[str, str],
    options: RunOptions,
    resources: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """The chunks through the actor pool, one row per call, streamed back as each finishes."""
    import ray

    context = ray.data.DataContext.get_current()
    # Chunks are journaled as they finish, in any order (annotations.json is sorted by id):
    # waiting for chunk order would let one slow actor hold back every other's results.
    context.execution_options.preserve_order = False
    context.enable_progress_bars = False
    context.max_consecutive_actor_init_deaths = 1  # a model that cannot load: stop, not loop
    if not log.isEnabledFor(logging.INFO):  # Ray Data's start/finish lines only when asked
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = [{"chunk": pickle.dumps((c, frozenset(ended & _numbers(c))))} for c in todo]
    data = ray.data.from_items(items, override_num_blocks=len(items))
    worker_settings = {**settings, "device": resources["device"]}
    needs = {k: v for k, v in resources.items() if k in ("num_gpus", "num_cpus")}
    with warnings.catch_warnings():
        # Ray 2.60 deprecates extra remote args but names no replacement for these two; its
        # default (-1) would retry a chunk that always kills its worker for ever.
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
        mapped = data.map_batches(
            WORKER,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(**resources["pool"]),
            fn_constructor_kwargs={"settings": worker_settings, "token": token},
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
            **needs,
        )
    try:  # iter_rows holds each row back until the next one is ready: take batches of one
        for batch in mapped.iter_batches(batch_size=1, prefetch_batches=0, batch_format="numpy"):
            yield {key: values[0] for key, values in batch.items()}
    except (ray.exceptions.RayError, ray.exceptions.RayTaskError) as err:
        raise _fatal(err) from None


def _drain(
    rows: Iterator[dict[str, Any]],
    tasks: list[Task],
    journal: Journal,
    progress: Progress | None,
    total: int,
    stop: threading.Event,
) -> tuple[EngineStats, float]:
    """Journal each chunk's events as its row arrives; progress after each row.

    Returns the figures and the actors' model-loading seconds.
    """
    edits = {t.number: len(t.job.edits) for t in tasks}
    done = sum(edits[n] for n in journal.ended if n in edits)
    seconds = [0.0, 0.0, 0.0]
    for row in rows:
        for kind, value in pickle.loads(row["events"]):
            if kind == "record":
                journal.add_record(value)
                done += edits[value.out_image_id]
            elif kind == "skip":
                log.warning("%s", value.line())
                journal.add_skip(value)
            else:
                journal.end_without_record(value)
                done += edits[value]
        seconds[0] += float(row["seconds_model"])
        seconds[1] += float(row["seconds_verify"])
        seconds[2] += float(row["seconds_load"])
        if progress:
            progress(done, total)
        if stop.is_set():
            break
    return EngineStats(seconds[0], done, seconds[1]), seconds[2]


def _numbers(chunk: Chunk) -> set[int]:
    return {t.number for t in chunk.tasks}


def _fatal(err: Exception) -> FatalError:
    """The worker's own fatal error when there is one, else one line about the Ray failure."""
    chain: list[Any] = [err]
    while len(chain) < 20 and chain[-1] is not None:
        chain.append(getattr(chain[-1], "cause", None) or chain[-1].__cause__)
    for seen in chain:
        if isinstance(seen, FatalError) and type(seen).__module__ == "inpaint_aug.errors":
            return seen
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return OutputError(f"a Ray worker failed: {first}")
