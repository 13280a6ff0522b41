"""The application factory: create_app(system, settings) -> the FastAPI application (the JSON API, the page, JSON
errors), for uvicorn (search.web.server) or in-process tests (fastapi.testclient.TestClient)."""

from search.system import SearchSystem
from search.web.settings import Settings


def create_app(system: SearchSystem, settings: Settings):
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from search.web.errors import add_error_handlers
    from search.web.routes import STATIC_DIR, router
    from search.web.timeouts import BodyDeadline

    app = FastAPI(
        title="neural_search",
        version="0.1.0",
        description="Semantic literature search: text -> vector, query -> top-K documents (Milvus + ERNIE).",
        max_body_size=settings.max_body_bytes,  # a 413 before a body over it is buffered, chunked or not
    )
    app.state.system, app.state.settings = system, settings
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout)
    # DNS rebinding: a page of another site resolving its name to this address names it in Host: a 400
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(settings.allowed_hosts), www_redirect=False)
    add_error_handlers(app, settings)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def trusted_hosts(names) -> list:
    """--allowed_hosts' names as TrustedHostMiddleware matches them (an IPv6 address in brackets, as in Host)."""
    return ["*"] if "*" in names else sorted(f"[{name}]" if ":" in name else name for name in names)
