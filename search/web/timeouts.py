"""The two connection timeouts uvicorn lacks (its issue #157); everything else about connections is the libraries'
(uvicorn's limit_concurrency: a 503 over --max_connections; Starlette's body limit and TrustedHostMiddleware).

    head_timeout_protocol(seconds)  uvicorn's HTTP/1.1 protocol, with a total deadline on a request head: a
                                    connection that has not sent a complete head within `seconds` (slowloris, a byte
                                    at a time) is closed, with a JSON 408 when it sent part of one. Passed as
                                    uvicorn's `http=`; uses h11's public API only.
    BodyDeadline                    ASGI middleware: a request body must arrive in full within `seconds` of its
                                    head, however it trickles (a TOTAL deadline, like the head's: progress does not
                                    extend it); then a JSON 408 and the connection is closed.
"""

import asyncio
import json
import time


def json_error_bytes(status, message) -> bytes:
    """A complete HTTP/1.1 answer {"error": message} that closes the connection, as bytes to write to a socket."""
    import http

    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def head_timeout_protocol(seconds):
    """uvicorn's h11 protocol class with the request-head deadline (see the module's docstring)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        head_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self.start_head_timer()

        def connection_lost(self, exc):
            self.stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data):
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:  # part of a head (or of the next one on a kept-alive connection)
                self.start_head_timer()
            else:
                self.stop_head_timer()

        def start_head_timer(self):
            if self.head_timer is None and not self.transport.is_closing():
                self.head_timer = self.loop.call_later(seconds, self.head_timed_out)

        def stop_head_timer(self):
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def head_timed_out(self):
            self.head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:  # a head begun and never finished; nothing at all: just closed
                self.logger.warning(f"{self.client}: no complete request head in {seconds:g} s: 408, closed")
                message = f"incomplete request head after {seconds:g} s (--header_timeout)"
                self.transport.write(json_error_bytes(408, message))
            self.transport.close()

    return HeadTimeoutProtocol


class BodyDeadline:
    """ASGI middleware: the request body's total deadline (see the module's docstring). The 408 is an HTTPException
    raised while the application reads the body; the application's handler answers it with connection: close."""

    def __init__(self, app, seconds):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        deadline = time.monotonic() + self.seconds
        body_done = False

        async def receive_by_the_deadline():
            nonlocal body_done
            if body_done:  # the body is read: a wait for the client's disconnect may take as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                from starlette.exceptions import HTTPException

                message = f"request body incomplete after {self.seconds:g} s (--body_timeout)"
                raise HTTPException(408, message) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_by_the_deadline, send)
