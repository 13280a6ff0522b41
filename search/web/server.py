"""`python -m search.web_service` (or `python -m search.web`): loads the search system once, then serves the
application with uvicorn: connections over --max_connections get uvicorn's 503 (limit_concurrency), a request head
must arrive within --header_timeout (search.web.timeouts)."""

import signal
import sys
import time

from ns_common.cli import entry_point
from ns_common.utils import logger
from search.system import SearchSystem, default_ranking_dir
from search.web.settings import ANY_ADDRESS, Settings, parse_args


@entry_point
def main(argv=None):
    import os

    import uvicorn

    from search.system import RANKING_FILE
    from search.web.app import create_app
    from search.web.timeouts import head_timeout_protocol

    args = parse_args(argv)
    if args.ranking_dir is None:  # the pipeline's layout: `ranking` beside the recall model, served when present
        beside = default_ranking_dir(args.model_dir)
        args.ranking_dir = beside if beside and os.path.isfile(os.path.join(beside, RANKING_FILE)) else None
        if args.ranking_dir is None:
            logger.info(
                f"no fitted ranking at {beside}: modes dense, bm25, hybrid only (python -m search.fit fits one)"
            )
    start = time.time()
    system = SearchSystem.from_args(args, everything=True)
    try:
        system.warm_up()
        system.facets  # noqa: B018 - counted over the collection's rows now, not on a user's request
        settings = Settings.from_args(args)
        app = create_app(system, settings)
        logger.info(
            f"loaded {settings.model_name} (dim {system.dim}) and collection {system.collection} "
            f"({system.documents()} documents, modes {', '.join(system.modes)}, default {system.mode}"
            f"{', reranker ' + settings.reranker_name if settings.reranker_name else ', no reranker'}) in "
            f"{time.time() - start:.1f}s; serving http://{args.host}:{args.port}/"
        )
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            logger.warning(
                f"listening on {args.host}: anyone who can reach this address can use the service (no authentication)"
            )
        if "*" not in args.allowed_hosts and args.host in ANY_ADDRESS:
            logger.warning(
                f"requests must name one of {', '.join(sorted(args.allowed_hosts))} in their Host header: "
                "give the names clients use with --allowed_hosts (or * for any)"
            )
        # uvicorn re-raises SIGTERM after its graceful shutdown: exit through `finally` so Milvus is closed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            http=head_timeout_protocol(args.header_timeout),
            # uvicorn answers 503 when the connections (this one included) reach the limit: --max_connections served
            limit_concurrency=args.max_connections + 1,
        )
    except KeyboardInterrupt:  # Ctrl-C, re-raised by uvicorn the same way
        pass
    finally:
        system.close()
        logger.info("web service stopped, Milvus connection closed")


if __name__ == "__main__":
    main()
