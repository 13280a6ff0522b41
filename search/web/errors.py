"""Every failure as a one-line JSON answer {"error": "..."}: the request's own fault a 4xx naming what is wrong, a
failing backend a 503, the service's own set-up or an unexpected error a 500 (its details in the service log)."""

import re

from ns_common.errors import BadInputError, MilvusUnavailableError, NeuralSearchError
from ns_common.utils import logger
from search.system import UnknownPaperError


class ApiError(Exception):
    """A request the service answers with an HTTP error status and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def printable(text) -> str:
    """text on one line, with control characters and what UTF-8 cannot encode (lone surrogates) as escapes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)


def classify_failure(error) -> ApiError:
    """The one place that turns a failure while answering a request into an ApiError: the request's own fault
    (BadInputError, e.g. recall.milvus.search.SearchError) a 400 (an unknown paper a 404), a failing backend
    (MilvusUnavailableError) a 503, models or settings that do not fit (ModelMismatchError, ConfigError, any other
    NeuralSearchError) a 500 with their message, anything else a 500."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, UnknownPaperError):
        return ApiError(404, f"no document with id {error.paper_id} in collection {error.collection}")
    if isinstance(error, BadInputError):
        return ApiError(400, str(error))
    if isinstance(error, UnicodeError):
        return ApiError(422, f"the request holds text that cannot be encoded as UTF-8 ({error.reason})")
    if isinstance(error, MilvusUnavailableError):
        logger.error(f"Milvus request failed: {error}")
        return ApiError(503, "the search backend (Milvus) failed on this request; see the service log")
    if isinstance(error, NeuralSearchError):  # ModelMismatchError, ConfigError: the service's own set-up
        logger.error(f"request failed: {error}")
        return ApiError(500, str(error))
    logger.error("request failed", exc_info=error)
    return ApiError(500, f"internal error ({type(error).__name__}); see the service log")


def add_error_handlers(app, settings) -> None:
    """JSON answers for ApiError, an invalid request (422 naming the field; malformed JSON 400), Starlette's own
    HTTP errors (404, 405, the body limit's 413, the body deadline's 408) and anything else (never a traceback)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        bad_json = [e for e in errors if e.get("type") == "json_invalid"]
        if bad_json:
            reason = (bad_json[0].get("ctx") or {}).get("error", "")
            return JSONResponse({"error": f"malformed JSON body: {reason}".rstrip(": ")}, status_code=400)
        # "top_k: Input should be a valid integer" (loc[0] is "body"); a field name may be anything the client sent,
        # a lone surrogate too: escape what UTF-8 cannot encode
        reasons = printable(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors[:3])
        )
        detail = [
            {
                "loc": [printable(str(p)) if isinstance(p, str) else p for p in e["loc"]],
                "msg": printable(e["msg"]),
                "type": e["type"],
            }
            for e in errors
        ]
        return JSONResponse({"error": f"invalid request: {reasons}", "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 413:  # FastAPI's max_body_size
            message = f"request body over {settings.max_body_bytes} bytes (--max_body_bytes)"
            return JSONResponse({"error": message}, status_code=413, headers={"connection": "close"})
        if exc.status_code == 408:  # BodyDeadline: the rest of the body may still come, so the connection is closed
            return JSONResponse({"error": exc.detail}, status_code=408, headers={"connection": "close"})
        return JSONResponse(
            {"error": printable(f"{exc.detail}: {request.method} {request.url.path}")}, status_code=exc.status_code
        )

    @app.exception_handler(NeuralSearchError)
    async def search_error(request: Request, exc: NeuralSearchError):
        error = classify_failure(exc)
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # never a plain-text 500 or a traceback
        error = classify_failure(exc)
        return JSONResponse({"error": error.message}, status_code=error.status)
