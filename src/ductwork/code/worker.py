"""A `code` node worker: the program each sandboxed worker process runs.

The pool (`ductwork.code.pool`) starts it as `python -I -S -B -c <this file's text>
LIMITS_JSON` with an empty environment, in a private temporary directory. It uses the
standard library only (`-S`: no site-packages, so nothing of ductwork or its
dependencies is importable from user code either).

At start, before it reads any user code, it
1. moves the protocol pipes off file descriptors 0 and 1 (what user code prints to
   them goes to /dev/null, not into the protocol),
2. sets its resource limits: address space (memory), open files, file size (no file
   writes), processes (no fork), core dumps,
3. imports the common standard modules (`PRELOADED`), then, when started as root,
   drops to an unprivileged user (uid/gid 65534, "nobody"),
4. answers a ready frame.

Then it serves calls one at a time: a request frame `{"source", "arguments",
"timeout", "nonce"}` is answered by `{"ok": true, "value", "stdout", "nonce"}` or
`{"ok": false, "kind", "error", "stdout", "nonce"}`. A frame is a 4-byte big-endian
length and UTF-8 JSON. The nonce, new for every call, is echoed so the pool can tell
this call's answer from a frame user code wrote to the protocol pipe itself (it can
reach the pipe's fd), e.g. one left behind for the next call.
Docs: docs/code-node.md.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import json
import linecache
import os
import resource
import sys
import traceback
from typing import Any

PRELOADED = (
    *("base64", "bisect", "calendar", "collections", "copy", "csv", "dataclasses"),
    *("datetime", "decimal", "difflib", "enum", "fractions", "functools", "hashlib"),
    *("heapq", "html", "itertools", "json", "math", "operator", "random", "re"),
    *("statistics", "string", "textwrap", "time", "typing", "unicodedata"),
    *("urllib.parse", "uuid", "zoneinfo"),
)
"""Standard modules imported before the worker drops its privileges: they stay
importable even where the unprivileged user cannot read the standard library (a
Python installed under /root)."""

FILENAME = "<code>"
"""The file name user code compiles under (tracebacks show it)."""

MAX_STDOUT_CHARS = 65_536
"""What a call may print; the rest is counted, not kept."""


class _Capture(io.TextIOBase):
    """A bounded stand-in for sys.stdout / sys.stderr during a call."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:  # type: ignore[override]
        text = str(text)
        room = MAX_STDOUT_CHARS - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... ({self.dropped} more characters not kept)"
        # A lone surrogate would make the whole answer unencodable.
        return out.encode("utf-8", "replace").decode("utf-8")


def _read_frame(fd: int) -> bytes | None:
    header = _read_exactly(fd, 4)
    if header is None:
        return None
    body = _read_exactly(fd, int.from_bytes(header, "big"))
    return body


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _write_frame(fd: int, payload: bytes) -> None:
    data = len(payload).to_bytes(4, "big") + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _answer(fd: int, answer: dict[str, Any], nonce: Any) -> None:
    answer["nonce"] = nonce
    try:
        payload = json.dumps(answer, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as exc:
        payload = json.dumps(
            {
                "ok": False,
                "kind": "result",
                "error": f"main returned a value that is not JSON: {exc}",
                "stdout": answer.get("stdout", ""),
                "nonce": nonce,
            }
        ).encode("utf-8")
    _write_frame(fd, payload)


def _user_traceback(exc: BaseException) -> str:
    """The traceback of `exc` with the worker's own frames left out."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _accepted(main: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments `main` declares (`def main(input)` need not take all three)."""
    try:
        parameters = inspect.signature(main).parameters.values()
    except (TypeError, ValueError):
        return arguments
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return arguments
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {name: value for name, value in arguments.items() if name in names}


def _call(request: dict[str, Any]) -> dict[str, Any]:
    source = request["source"]
    # Back-stop for an orphaned worker: the parent kills a call at its wall-clock
    # timeout; this CPU limit (SIGXCPU) ends one whose parent is gone.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + float(request["timeout"])) + 2
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    capture = _Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    try:
        namespace: dict[str, Any] = {"__name__": "__code__", "__builtins__": builtins}
        exec(compile(source, FILENAME, "exec"), namespace)
        main = namespace.get("main")
        if not callable(main):
            return {"ok": False, "kind": "exception", "error": "the code defines no `main`"}
        value = main(**_accepted(main, request["arguments"]))
    except MemoryError:
        return {"ok": False, "kind": "memory", "error": "MemoryError", "stdout": capture.text()}
    except BaseException as exc:  # user code may raise anything, SystemExit too
        return {
            "ok": False,
            "kind": "exception",
            "error": _user_traceback(exc),
            "stdout": capture.text(),
        }
    finally:
        sys.stdout, sys.stderr = saved
    return {"ok": True, "value": value, "stdout": capture.text()}


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def _sandbox(limits: dict[str, Any]) -> tuple[int, int]:
    """Set the process up as the module docstring says; returns the protocol fds."""
    requests = os.dup(0)
    answers = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    memory = int(limits["memory_mb"]) * 1024 * 1024
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_NPROC, 0)
    for name in PRELOADED:
        with contextlib.suppress(ImportError):
            __import__(name)
    if os.getuid() == 0:
        uid = int(limits["uid"])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    sys.dont_write_bytecode = True
    return requests, answers


def main() -> None:
    """Serve calls until the parent closes the request pipe."""
    requests, answers = _sandbox(json.loads(sys.argv[1]))
    _write_frame(answers, b'{"ready": true}')
    while True:
        frame = _read_frame(requests)
        if frame is None:
            return
        request = json.loads(frame)
        answer = _call(request)
        _answer(answers, answer, request.get("nonce"))
        if answer.get("kind") == "memory":
            # A MemoryError can leave the interpreter half-broken: start afresh.
            return


if __name__ == "__main__":
    main()
