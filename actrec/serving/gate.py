"""The server's door: every HTTP request is answered in one line, a malformed API call with a 4xx.

Gradio answers an API call naming no endpoint with a 500 and a traceback in the server's log, and one whose
data is not what the endpoint takes is queued, then fails inside the queue with another traceback. This ASGI
middleware checks each API call before Gradio sees it: the endpoint exists (404 naming those that do), the
body is `{"data": [...]}` with one value per input, and each value is what its component takes, by the
component's own data model (400 saying which input and why). Whatever still fails inside a request is
answered with one line (500), and its traceback goes to the debug log only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The routes that run an endpoint: by name, or (queue/join, as the page calls) by the function's index
CALL = re.compile(r"/gradio_api/(?:call/v2|call|run|api)/(?P<name>[^/]+)/?|/gradio_api/queue/join/?")
MAX_BODY = 1 << 20  # bytes of JSON: files come through /gradio_api/upload, a call only names them


class Refusal(Exception):
    """An API call the server does not run: the HTTP status and the one line that says why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _one_line(err: Exception) -> str:
    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where + ': ' if where else ''}{first['msg']}"
    return " ".join(str(err).split())[:200] or type(err).__name__


class Gate:
    """ASGI middleware in front of a Gradio page (pass it as `app_kwargs={"middleware": [...]}` at launch)."""

    def __init__(self, app: ASGIApp, page: gr.Blocks) -> None:
        self.app, self.page = app, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            call = CALL.fullmatch(scope["path"]) if scope["method"] == "POST" else None
            if call:
                body = await _read(receive)
                self.check(call["name"], body)
                receive = _replay(body, receive)
            await self.app(scope, receive, tracked)
        except Refusal as refusal:
            await _answer(send, refusal.status, str(refusal))
        except Exception as err:  # the server keeps serving: one line to the caller, the traceback at debug
            logger.debug("%s %s failed", scope["method"], scope["path"], exc_info=True)
            if not started:
                await _answer(send, 500, f"internal error ({type(err).__name__}: {_one_line(err)})")
            else:  # a stream cut short: ended here, as the server would otherwise log it was left open
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    def check(self, name: str | None, body: bytes) -> None:
        """Refuse a call whose endpoint or data the page does not have; return quietly for one it can run."""
        try:
            request = json.loads(body)
        except ValueError as err:
            raise Refusal(400, f"the body is not JSON ({err})") from None
        if not isinstance(request, dict) or not isinstance(request.get("data"), list):
            raise Refusal(400, 'expected a JSON object {"data": [one value per input]}')
        fns = self.page.fns
        named = sorted(f.api_name for f in fns.values() if f.api_name and f.api_visibility != "private")
        index = request.get("fn_index")
        if index is not None:
            fn = fns.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
            if fn is None:
                raise Refusal(404, f"no function {index!r} on this page")
        else:
            fn = next((f for f in fns.values() if name and f.api_name == name), None)
            if fn is None or fn.api_visibility == "private":
                raise Refusal(404, f"no API endpoint {name!r}; this server has: {', '.join(named)}")
        data = request["data"]
        if len(data) != len(fn.inputs):
            raise Refusal(400, f"{fn.api_name or index} takes {len(fn.inputs)} input(s), not {len(data)}")
        for i, (block, value) in enumerate(zip(fn.inputs, data, strict=True), start=1):
            if value is not None:
                self._check_value(f"{fn.api_name or index}: input {i}", block, value)

    def _check_value(self, what: str, block: Any, value: Any) -> None:
        """A value its component takes: by the component's data model, a file the server received, one of a
        dropdown's choices (what Gradio checks later, inside the queue, printing a traceback)."""
        model = getattr(block, "data_model", None)
        if model is not None:
            try:
                model.model_validate(value, context={"validate_meta": True})
            except (ValidationError, ValueError, TypeError) as err:
                raise Refusal(400, f"{what} is not a {type(block).__name__} value: {_one_line(err)}") from None
        if isinstance(block, gr.File):
            uploads = Path(self.page.app.uploaded_file_dir).resolve()
            if not Path(str(value.get("path") or "")).resolve().is_relative_to(uploads):
                raise Refusal(400, f"{what} names a file this server did not receive; upload it first")
        if isinstance(block, gr.Dropdown):
            choices = [choice[1] for choice in block.choices]
            if value not in choices:
                raise Refusal(400, f"{what} is not one of the {len(choices)} choices the page offers")


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise Refusal(413, f"the call's body is over {MAX_BODY // 1024} KB; upload files to /gradio_api/upload")
        if not message.get("more_body"):
            return body


def _replay(body: bytes, then: Receive) -> Receive:
    """The body read once, given again to the app; after it, the client's own messages (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _answer(send: Send, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
