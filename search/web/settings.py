"""The web service's flags and the one typed object the application reads them from (Settings)."""

import argparse
import math
import socket
import time
from dataclasses import dataclass, field

from ns_common.cli import positive_int
from ns_common.errors import ConfigError
from recall.milvus.config import add_config_args
from recall.milvus.model import add_model_args, check_model_args

MILVUS_MAX_TOP_K = 16384  # Milvus' own limit on the hits of one search
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Settings:
    """What the application needs of the command line: the names it reports and the limits it enforces."""

    model_name: str
    reranker_name: str | None
    max_seq_length: int
    max_texts: int = 32
    max_text_length: int = 1000
    max_top_k: int = 100
    rerank_candidates: int = 50
    max_body_bytes: int = 1 << 20
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections: int = 64
    allowed_hosts: frozenset = frozenset(LOCAL_HOSTS)
    allow_delete: bool = False  # POST /api/delete removes papers (off: a 403)
    started: float = field(default_factory=time.time)  # when the service started: /api/health's uptime

    @classmethod
    def from_args(cls, args) -> "Settings":
        import os

        return cls(
            model_name=os.path.normpath(args.model_dir or args.params_path),
            reranker_name=os.path.normpath(args.reranker_dir) if args.reranker_dir else None,
            max_seq_length=args.max_seq_length,
            max_texts=args.max_texts,
            max_text_length=args.max_text_length,
            max_top_k=args.max_top_k,
            rerank_candidates=args.rerank_candidates,
            max_body_bytes=args.max_body_bytes,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            max_connections=args.max_connections,
            allowed_hosts=frozenset(args.allowed_hosts),
            allow_delete=args.allow_delete,
        )

    @property
    def limits(self) -> dict:
        """What /api/health reports as the request limits."""
        return {
            name: getattr(self, name) for name in ("max_texts", "max_text_length", "max_top_k", "rerank_candidates")
        }


def parse_args(argv=None) -> argparse.Namespace:
    """The flags, checked before anything loads: a bad value is a ConfigError (server.main, an entry point, makes it
    one line and exit code 2), a port in use too."""
    from search import web

    parser = argparse.ArgumentParser(description=web.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes the service to the network)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--reranker_dir",
        default=None,
        help="ERNIE-Gram reranker (exported dir or checkpoint dir); without it rerank requests get a 400",
    )
    parser.add_argument(
        "--rerank_candidates", type=int, default=50, help="recall hits handed to the reranker per query"
    )
    parser.add_argument(
        "--ranking_dir",
        default=None,
        help="the system's fitted ranking, search/fit.py's output (default: `ranking` beside --model_dir, when present)",
    )
    parser.add_argument("--max_texts", type=int, default=32, help="most texts in one /api/embed request")
    parser.add_argument("--max_text_length", type=int, default=1000, help="most characters of a text or a query")
    parser.add_argument(
        "--max_top_k",
        type=int,
        default=100,
        help=f"largest top_k of /api/search (at most {MILVUS_MAX_TOP_K}, Milvus' limit)",
    )
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20, help="largest request body")
    parser.add_argument(
        "--header_timeout",
        type=float,
        default=10.0,
        help="seconds a connection has to send a complete request head; then it is closed (408 if it sent part of one)",
    )
    parser.add_argument(
        "--body_timeout",
        type=float,
        default=10.0,
        help="seconds a request body has to arrive in full, from the end of its head (a total deadline, however "
        "slowly it trickles); then a 408 and the connection is closed",
    )
    parser.add_argument(
        "--max_connections",
        type=positive_int,
        default=64,
        help="open connections served at once; a request on one over the limit gets a 503 and is closed",
    )
    parser.add_argument(
        "--allowed_hosts",
        default=None,
        help="comma-separated names the Host header may carry (port ignored; `*`: any); other Host headers "
        "get a 400 (DNS rebinding). Default: localhost, 127.0.0.1, ::1 and --host when it is one address",
    )
    parser.add_argument(
        "--allow_delete",
        action="store_true",
        help="let POST /api/delete remove papers by id from a collection keyed by paper ids (off: a 403)",
    )
    parser.add_argument("--log_level", default="info", choices=("debug", "info", "warning", "error"))
    add_model_args(parser, batch_size=32)
    add_config_args(parser, skip=("batch_size",))
    args = parser.parse_args(argv)
    check_model_args(args)
    if args.reranker_dir:
        from ernie_matching.reranker import reranker_kind

        reranker_kind(args.reranker_dir)
    for name in ("rerank_candidates", "max_texts", "max_text_length", "max_top_k", "max_body_bytes"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.max_top_k > MILVUS_MAX_TOP_K:
        raise ConfigError(
            f"--max_top_k must be at most {MILVUS_MAX_TOP_K} (Milvus' limit on one search), got {args.max_top_k}"
        )
    for name in ("header_timeout", "body_timeout"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            raise ConfigError(f"--{name} must be a positive number of seconds, got {getattr(args, name)}")
    args.allowed_hosts = parse_allowed_hosts(args.allowed_hosts, args.host)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 0..65535")
    check_port_free(args.host, args.port)
    return args


def default_allowed_hosts(host) -> set:
    """The Host names answered by default: the loopback names, and the address the service listens on when it is
    one address (not 0.0.0.0 or ::, where the names the network uses cannot be guessed: --allowed_hosts)."""
    return set(LOCAL_HOSTS) | ({host_name(host)} if host_name(host) not in ANY_ADDRESS else set())


def parse_allowed_hosts(text, host) -> set:
    """--allowed_hosts ("a.example,b.example", "*" for any; None: default_allowed_hosts) -> the set of names."""
    if text is None:
        return default_allowed_hosts(host)
    names = {host_name(name) for name in text.split(",") if name.strip()}
    if not names:
        raise ConfigError(f"--allowed_hosts {text!r}: give at least one host name, or * for any")
    return names


def host_name(value) -> str:
    """A host name as given -> lower-cased, without port, IPv6 brackets or a trailing dot ("[::1]:8000" -> "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def check_port_free(host, port) -> None:
    """Fails before any model is loaded when the address is taken (uvicorn would only notice after)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {e.strerror or e} (another service there? pick another --port)"
            ) from None
