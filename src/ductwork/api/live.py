"""Live execution updates: a WebSocket and a Server-Sent Events stream per run.

Both read the run through `ductwork.live` (the store plus the event bus), so
they work for runs executing in any process.

WebSocket `/ws/executions/{execution_id}?after=N`
    First message `{"type": "snapshot", "run": {...}, "last_seq": N}` (the run
    as GET /workflows/executions/{id} shows it, plus its definition), then one
    text message per event, `{"seq", "type", "node_id", "timestamp", "data"}`,
    then a close with code 1000 after `run_finished`. `after` is the last seq
    the client has seen: events up to it are not sent again. An unknown id is
    accepted and then closed with code 4404 and the reason: a browser cannot
    read why a handshake was refused (it only sees 1006), but it can read a
    close code and reason. `?paged=true`: the snapshot has no `logs` and says
    `"paged": true`; a first connection streams only what follows its `last_seq`
    (the client pages the earlier events, `GET .../events/page`).

SSE `GET /workflows/executions/{execution_id}/events`
    `event: snapshot` first (no id), then per event `id: <seq>`, `event: <type>`,
    `data: <json>` (token events carry no id, so a reconnect resumes by stored
    seq), a `: keep-alive` comment after 15 s of silence, and the end of the
    response after `run_finished`. Resumes after the `Last-Event-ID` header (or
    `?after=`). Unknown id: 404 before streaming. A finished run with nothing
    after the given id: 204, which tells an EventSource to stop reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Header, Query, WebSocket
from fastapi.responses import Response, StreamingResponse
from starlette import websockets as starlette_websockets
from starlette.websockets import WebSocketDisconnect

from ductwork import live
from ductwork.api.deps import App
from ductwork.api.limits import MAX_SEQ, RequestRejected, ResourceId, Seq
from ductwork.api.responses import dumps
from ductwork.api.schemas import ErrorDetail, Problem
from ductwork.models import Event, EventType, Run
from ductwork.service import Ductwork, NotFound
from ductwork.views import run_view

router = APIRouter(tags=["live"])

SSE_KEEPALIVE_SECONDS = 15.0
"""Idle time after which the SSE stream sends a comment (proxies close silent connections)."""

_CLIENT_GONE: tuple[type[BaseException], ...] = (
    WebSocketDisconnect,
    OSError,
    # Starlette >= 0.47 raises this (a RuntimeError) for a send after the client left.
    getattr(starlette_websockets, "WebSocketDisconnected", WebSocketDisconnect),
)

SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["snapshot", *get_args(EventType)]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "`{type: snapshot, run, last_seq}` for the snapshot, else "
            "`{seq, type, node_id, timestamp, data}`.",
        },
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's seq."},
    },
}
"""One frame of the events stream, as documented in the OpenAPI document."""

WS_NOT_FOUND = 4404
"""Close code for an unknown execution id (4000-4999 are the application's to use)."""


def snapshot_message(run: Run, *, paged: bool = False) -> dict[str, Any]:
    """The first message of a live stream: the run as it stands, with its definition.

    `paged` (the `?paged=true` of both streams): the run's `logs` are left out (the
    client pages the events up to `last_seq`) and the message says so.
    """
    view = run_view(run, include_definition=True)
    message: dict[str, Any] = {"type": "snapshot", "run": view, "last_seq": run.last_seq}
    if paged:
        view["logs"] = []
        message["paged"] = True
    return message


Paged = Annotated[
    bool,
    Query(
        description="true: the snapshot leaves the run's `logs` out and a first connection "
        "starts after the snapshot's `last_seq` (page the earlier events with "
        "`GET /workflows/executions/{execution_id}/events/page`): for long runs."
    ),
]


def _encode(event: Event) -> bytes:
    # Through the API's encoder: an output orjson cannot write must not end the stream.
    return dumps(live.event_json(event))


@router.websocket("/ws/executions/{execution_id}")
async def execution_socket(
    websocket: WebSocket,
    execution_id: ResourceId,
    after: Seq = 0,
    paged: Paged = False,
) -> None:
    """Stream a run's snapshot and events; close 1000 after run_finished, 4404 if unknown."""
    app: Ductwork = websocket.app.state.ductwork
    await websocket.accept()
    async with contextlib.AsyncExitStack() as stack:
        try:
            run_stream = await stack.enter_async_context(
                live.stream(app, execution_id, after, paged=paged)
            )
        except NotFound as exc:
            await websocket.close(code=WS_NOT_FOUND, reason=str(exc)[:120])
            return

        async def send_events() -> None:
            snapshot = snapshot_message(run_stream.run, paged=paged)
            await websocket.send_text(dumps(snapshot).decode())
            async for event in run_stream:
                await websocket.send_text(_encode(event).decode())
            await websocket.close(code=1000)

        async def until_disconnect() -> None:
            # Nothing is expected from the client; reading is how a disconnect is noticed
            # while the run is quiet (a parked run may send nothing for hours).
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        sender = asyncio.ensure_future(send_events())
        watcher = asyncio.ensure_future(until_disconnect())
        try:
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, watcher):
                task.cancel()
            results = await asyncio.gather(sender, watcher, return_exceptions=True)
        for result in results:
            # A client that went away mid-send is normal; anything else is a bug to surface.
            if isinstance(result, Exception) and not isinstance(result, _CLIENT_GONE):
                raise result


def _sse_frame(event_type: str, data: bytes, event_id: int | None = None) -> bytes:
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"event: " + event_type.encode() + b"\ndata: " + data + b"\n\n"


async def _sse_body(app: Ductwork, execution_id: str, after: int) -> AsyncIterator[bytes]:
    try:
        async with live.stream(app, execution_id, after) as run_stream:
            yield _sse_frame("snapshot", dumps(snapshot_message(run_stream.run)))
            async for item in run_stream.items(heartbeat=SSE_KEEPALIVE_SECONDS):
                if item is None:
                    yield b": keep-alive\n\n"
                    continue
                event_id = None if item.type in live.EPHEMERAL_TYPES else item.seq
                yield _sse_frame(item.type, _encode(item), event_id)
    except NotFound:
        return


def _resume_point(last_event_id: str | None, after: int) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after
    try:
        value = int(last_event_id.strip())
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEQ:
        raise _BadLastEventId(last_event_id)
    return value


class _BadLastEventId(ValueError):
    pass


@router.get(
    "/workflows/executions/{execution_id}/events",
    summary="Stream an execution's events (Server-Sent Events)",
    description=(
        "`event: snapshot` first (the run with its definition), then one frame per event "
        "(`id: <seq>`, `event: <type>`, `data: {seq, type, node_id, timestamp, data}`) until "
        "`run_finished`; `token` frames (streamed LLM text) have no id. Resume with the "
        "`Last-Event-ID` header or `?after=<seq>`. A comment is sent after 15 s of silence. "
        "The same stream is available over WebSocket at `/ws/executions/{execution_id}"
        "?after=<seq>` (first message `{type: snapshot, run, last_seq}`, close code 1000 "
        "after run_finished, 4404 for an unknown id)."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    # One SSE event (FastAPI's `itemSchema` convention for streams).
                    "itemSchema": SSE_EVENT_SCHEMA,
                    "example": 'event: snapshot\ndata: {"type": "snapshot", ...}\n\n'
                    "id: 1\nevent: run_started\ndata: "
                    '{"seq": 1, "type": "run_started", "node_id": null, ...}\n\n',
                }
            },
            "description": "The run's snapshot, then its events until run_finished.",
        },
        204: {"description": "The run has finished and nothing follows the given id."},
        404: {"model": ErrorDetail, "description": "Unknown execution id."},
        422: {
            "model": Problem,
            "description": "An invalid id, `after` or Last-Event-ID (the field names which).",
        },
    },
)
async def execution_events(
    app: App,
    execution_id: ResourceId,
    after: Seq = 0,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this seq (EventSource sends it).")
    ] = None,
) -> Response:
    try:
        start = _resume_point(last_event_id, after)
    except _BadLastEventId as exc:
        # Answered as every 422 is (`Problem`), naming the header as the field.
        raise RequestRejected(
            f"must be a non-negative seq, got {str(exc)[:40]!r}", "Last-Event-ID"
        ) from None
    run = await app.store.get_run(execution_id, with_events=False)
    if run is None:
        raise NotFound("execution", execution_id)
    if run.status.finished and start >= run.last_seq:
        return Response(status_code=204)
    return StreamingResponse(
        _sse_body(app, execution_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
