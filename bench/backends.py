"""The Milvus backends the benchmarks compare side by side, each row in a process of its own:

    lite       milvus-lite 2.5 embedded: Milvus' C++ core in local mode, in this venv (the project's default)
    lite3      milvus-lite 3.x embedded: the pure-Python re-implementation, in its own venv
               (bench/setup_lite3_venv.sh; two milvus-lite versions cannot share one venv)
    lite_grpc  milvus-lite 2.5's engine served over gRPC on loopback (recall/milvus/local_server.py --engine lite)
    server     Milvus 2.3.5 standalone (pip milvus, scripts/setup_milvus_server.sh): HNSW, no BM25

A row runs as `python <script> --worker <payload.json>` under the backend's interpreter (a subprocess, not
multiprocessing: a spawned child would inherit this venv's sys.path and import its milvus-lite).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("lite", "lite3", "lite_grpc", "server")
LITE3_VENV = os.environ.get("NS_LITE3_VENV", os.path.expanduser("~/.cache/neural_search/lite3-venv"))


def python_for(backend):
    """The interpreter a backend's worker runs in: the lite3 venv's for lite3, else this one."""
    if backend != "lite3":
        return sys.executable
    python = os.path.join(LITE3_VENV, "bin", "python")
    if not os.path.isfile(python):
        from ns_common.errors import ConfigError

        raise ConfigError(f"backend lite3 needs {python}: run bash bench/setup_lite3_venv.sh first")
    return python


@contextlib.contextmanager
def milvus_uri(backend, root, startup_timeout_s=900):
    """(URI, pid of a server process or None) of a fresh, empty Milvus of the backend under root; stops it after."""
    from recall.milvus.local_server import LiteEngineServer, LocalMilvusServer

    if backend in ("lite", "lite3"):
        yield os.path.join(root, "bench.db"), None
        return
    if backend == "lite_grpc":
        server = LiteEngineServer(os.path.join(root, "lite_server"))
    else:
        server = LocalMilvusServer(os.path.join(root, "server"), startup_timeout_s=startup_timeout_s)
    server.start()
    try:
        yield server.uri, server.process.pid
    finally:
        server.stop()


def run_isolated(backend, script, payload, time_box_s=None):
    """Runs `script --worker` with payload (JSON-able) under backend's interpreter; returns the dict the worker
    wrote (worker_main), or {"error": ...} when it died without one or ran past time_box_s (SIGTERM, then kill)."""
    with tempfile.TemporaryDirectory(prefix="bench_worker_") as tmp:
        payload_file, result_file = os.path.join(tmp, "payload.json"), os.path.join(tmp, "result.json")
        with open(payload_file, "w", encoding="utf-8") as f:
            json.dump({**payload, "backend": backend, "result_file": result_file}, f)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
        process = subprocess.Popen([python_for(backend), script, "--worker", payload_file], cwd=REPO, env=env)
        try:
            code = process.wait(timeout=time_box_s)
        except subprocess.TimeoutExpired:
            process.terminate()  # the worker stops its Milvus server on the way out
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return {**read_partial(result_file), "error": f"not finished within the time box of {time_box_s:.0f} s"}
        if not os.path.isfile(result_file):
            return {**read_partial(result_file), "error": f"worker exited with code {code}"}
        with open(result_file, encoding="utf-8") as f:
            return json.load(f)


def save_partial(payload, result) -> None:
    """What a worker has measured so far (a JSON-able dict): run_isolated returns it beside the error when the worker
    runs past its time box or dies, so a row says what it finished."""
    partial = payload["result_file"] + ".partial"
    with open(partial + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(partial + ".tmp", partial)


def read_partial(result_file) -> dict:
    try:
        with open(result_file + ".partial", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Terminated(BaseException):
    """SIGTERM in a worker (the time box): unwinds like Ctrl-C, so servers are stopped."""


def _terminated(*_):
    raise Terminated("terminated (SIGTERM)")


def worker_main(payload_file, work):
    """The worker side: work(payload) -> a JSON-able dict, written where run_isolated reads it; an exception is
    written as {"error": ...}. SIGTERM (the time box) unwinds, so servers are stopped."""
    signal.signal(signal.SIGTERM, _terminated)
    with open(payload_file, encoding="utf-8") as f:
        payload = json.load(f)
    try:
        result = work(payload)
    except BaseException as e:  # noqa: BLE001 - report, never hang the parent
        result = {**read_partial(payload["result_file"]), "error": f"{type(e).__name__}: {e}"}
    with open(payload["result_file"] + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(payload["result_file"] + ".tmp", payload["result_file"])
