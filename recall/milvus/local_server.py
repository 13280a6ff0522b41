"""Starts a Milvus server on free loopback ports with its own data directory, for the client/server tests, the
benchmarks and local trials. Two kinds:

- `--engine milvus` (default): a real Milvus standalone, pip `milvus==2.3.5` and its `milvus-server` launcher
  (HNSW, authentication; no BM25 function: dense only). Lives in a venv of its own.
- `--engine lite`: the project's embedded engine, milvus-lite 2.5 (Milvus' C++ core in local mode), serving one
  .db file over gRPC (milvus_lite.server): BM25, sparse vectors and hybrid search, so the whole search system runs
  against `--uri http://127.0.0.1:PORT`, as against a Milvus >= 2.5 server; several processes can share it.

    bash scripts/setup_milvus_server.sh                     # once, for --engine milvus: the server's own venv
    python -m recall.milvus.local_server --data_dir /tmp/milvus_trial [--authorization]
    python -m recall.milvus.local_server --engine lite --data_dir /tmp/lite_trial [--port 19530]
    # prints the URI (http://127.0.0.1:PORT) and serves until Ctrl+C or `kill PID`

Production users point --uri at their own standalone/cluster instead. The Milvus server venv is
$NS_MILVUS_VENV, default ~/.cache/neural_search/milvus-venv (it pins the server's own dependencies, which clash
with this project's).
"""

import argparse
import contextlib
import fcntl
import functools
import os
import signal
import socket
import subprocess
import sys
import time

from ns_common.cli import entry_point, fail
from ns_common.utils import logger

DEFAULT_VENV = os.environ.get("NS_MILVUS_VENV", os.path.expanduser("~/.cache/neural_search/milvus-venv"))
PORT_FLAGS = (
    "--etcd-port",
    "--root-coord-port",
    "--proxy-port",
    "--proxy-internal-port",
    "--query-coord-port",
    "--query-node-port",
    "--index-coord-port",
    "--index-node-port",
    "--data-coord-port",
    "--data-node-port",
)
READY_BANNER = "Ctrl+C to exit"  # milvus-server prints it once its /healthz answers OK


def server_executable(venv=DEFAULT_VENV):
    return os.path.join(venv, "bin", "milvus-server")


def free_ports(n):
    """n distinct free loopback ports (bound together, so no two are equal, then released)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LocalMilvusServer:
    def __init__(self, data_dir, venv=DEFAULT_VENV, authorization=False, startup_timeout_s=180):
        self.data_dir = os.path.abspath(data_dir)
        self.executable = server_executable(venv)
        self.authorization = authorization
        self.startup_timeout_s = startup_timeout_s
        self.process = None
        self.port = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self):
        return os.path.join(self.data_dir, "milvus-server.out")

    def start(self):
        if not os.path.isfile(self.executable):
            raise FileNotFoundError(
                f"{self.executable} not found: run scripts/setup_milvus_server.sh (or set NS_MILVUS_VENV)"
            )
        os.makedirs(self.data_dir, exist_ok=True)
        ports = free_ports(len(PORT_FLAGS) + 1)
        self.port = ports[PORT_FLAGS.index("--proxy-port")]
        env = dict(
            os.environ, ETCD_CONFIG_PATH=self._write_etcd_config(ports[PORT_FLAGS.index("--etcd-port")], ports[-1])
        )
        command = [self.executable, "--data", self.data_dir]
        for flag, port in zip(PORT_FLAGS, ports):
            command += [flag, str(port)]
        if self.authorization:
            command += ["--authorization-enabled", "true"]
        with open(self.log_file, "w", encoding="utf-8") as log:
            # a session of its own: stop() can end the launcher and the milvus process it starts together
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        self._wait_ready()
        logger.info(f"Milvus 2.3.5 server (pid {self.process.pid}) ready at {self.uri}, data in {self.data_dir}")
        return self

    def _write_etcd_config(self, client_port, peer_port):
        """The embedded etcd's own config: milvus-server has no flag for its peer port, fixed at 2380 otherwise,
        so a second server on the machine would fail. Milvus reads etcd.config.path from $ETCD_CONFIG_PATH."""
        path = os.path.join(self.data_dir, "embed_etcd.yaml")
        client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        with open(path, "w", encoding="utf-8") as f:
            f.write(
                f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n"
            )
        return path

    def _wait_ready(self):
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-server exited with code {self.process.returncode}; see {self.log_file}")
            with open(self.log_file, encoding="utf-8", errors="replace") as f:
                if READY_BANNER in f.read():
                    return
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"milvus-server not ready after {self.startup_timeout_s}s; see {self.log_file}")

    def stop(self):
        """SIGINT to the launcher (it stops milvus), then SIGKILL to its process group if still alive."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        try:  # noqa: SIM105
            os.killpg(self.process.pid, signal.SIGKILL)  # the group we started: milvus and its children
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=15)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _engine_child(lock_fd, parent_pid):
    """Runs in the engine's process between fork and exec (Popen's preexec_fn): it gets SIGTERM when its parent dies
    (prctl PR_SET_PDEATHSIG: a `kill -9` of the launcher never leaves the engine serving, unwatched), and it takes
    the database's lock itself (a POSIX lock belongs to a process: taken here, it lasts as long as the engine)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl: no signal will come
        os._exit(1)
    fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class LiteEngineServer:
    """milvus-lite's engine serving data_dir/<db_name> over gRPC on a free loopback port (or `port`): the embedded
    engine, reachable from other processes like a Milvus server.

    Started here rather than by milvus_lite.server.Server, which serves an address with neither of the two guards a
    shared database needs: the engine holds milvus-lite's own lock on the database (`.<db_name>.lock`, what a Milvus
    Lite client takes), so a second engine or a client on the same file is refused while it runs, and it dies with
    this process (a `kill -9` included), so it never serves on, unwatched and unauthenticated, after its launcher."""

    def __init__(self, data_dir, port=None, db_name="milvus.db", startup_timeout_s=60):
        self.data_dir = os.path.abspath(data_dir)
        self.db_file = os.path.join(self.data_dir, db_name)
        self.lock_file = os.path.join(self.data_dir, f".{db_name}.lock")
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.process = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        from milvus_lite.server import BIN_PATH, Server

        os.makedirs(self.data_dir, exist_ok=True)
        self.port = self.port or free_ports(1)[0]
        lock_fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:  # asked first for a clear message; the engine takes the lock itself
                fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(lock_fd, fcntl.LOCK_UN)
            except OSError:
                raise RuntimeError(
                    f"{self.db_file} is open in another process (another engine, or a Milvus Lite client): stop it first"
                ) from None
            library_path = ":".join(p for p in (BIN_PATH, os.environ.get("LD_LIBRARY_PATH")) if p)
            try:
                self.process = subprocess.Popen(
                    [os.path.join(BIN_PATH, Server.MILVUS_BIN), self.db_file, f"127.0.0.1:{self.port}", "ERROR"],
                    env=dict(os.environ, LD_LIBRARY_PATH=library_path),
                    cwd=self.data_dir,
                    pass_fds=(lock_fd,),
                    preexec_fn=functools.partial(_engine_child, lock_fd, os.getpid()),  # the launcher has one thread
                )
            except subprocess.SubprocessError:  # the lock was taken between the question and the engine's start
                raise RuntimeError(f"{self.db_file} is open in another process: stop it first") from None
        finally:
            os.close(lock_fd)  # the engine keeps its own descriptor, and with it the lock
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite's engine exited with code {self.process.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    logger.info(f"milvus-lite engine (pid {self.process.pid}) serving {self.db_file} at {self.uri}")
                    return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"milvus-lite's engine not listening on port {self.port} after {self.startup_timeout_s}s")

    def stop(self):
        """SIGTERM to the engine (SIGKILL if it lingers); its lock on the database goes with it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@entry_point
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="the server's data directory")
    parser.add_argument(
        "--engine",
        choices=("milvus", "lite"),
        default="milvus",
        help="milvus: Milvus 2.3.5 standalone (pip milvus); lite: milvus-lite 2.5's engine over gRPC (BM25)",
    )
    parser.add_argument("--port", type=int, default=None, help="--engine lite: the gRPC port (default: a free one)")
    parser.add_argument(
        "--venv",
        default=DEFAULT_VENV,
        help="the venv holding pip milvus==2.3.5, the server (scripts/setup_milvus_server.sh installs it)",
    )
    parser.add_argument("--authorization", action="store_true", help="require credentials (user root, password Milvus)")
    args = parser.parse_args(argv)
    if args.engine == "lite" and args.authorization:
        fail("--authorization: milvus-lite's server has no authentication; use --engine milvus")
    if args.port is not None and not 0 < args.port < 65536:
        fail(f"--port {args.port}: expected 1..65535")
    if args.engine == "milvus" and not os.path.isfile(server_executable(args.venv)):
        fail(f"{server_executable(args.venv)} not found: run scripts/setup_milvus_server.sh first")
    if args.engine == "lite":
        server = LiteEngineServer(args.data_dir, args.port)
    else:
        server = LocalMilvusServer(args.data_dir, args.venv, args.authorization)
    # `kill PID` must stop Milvus too: the default SIGTERM would end this launcher and orphan the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.start()
        print(
            f"Milvus server at {server.uri}"
            + (" (token root:Milvus)" if args.authorization else "")
            + "; Ctrl+C to stop",
            flush=True,
        )
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as e:
        fail(str(e))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
