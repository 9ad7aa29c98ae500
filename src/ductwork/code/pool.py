"""A pool of sandboxed worker processes that run `code` nodes' Python.

Each worker is a separate, isolated interpreter (`python -I -S -B`, empty
environment, private temporary working directory, only fds 0-2 inherited) running
`ductwork/code/worker.py`, which sets its resource limits and, under root, drops to
an unprivileged user before it reads any user code. Calls go over the worker's
stdin/stdout as length-prefixed JSON frames; one call at a time per worker.

The pool enforces what the worker cannot enforce on itself: the wall-clock timeout
(the worker is killed and replaced), a crash (a dead worker is replaced), an answer
too big to take, and a bound on callers waiting for a free worker. Workers start on
the first call (or `start()`) and are killed by `close()`.

User code can reach its worker's protocol pipes (and change the interpreter's state),
so a worker is never handed from one workflow to another: a worker that last served
another workflow is killed and a fresh one started for the call. Every request carries
a new random nonce that the answer must echo; an answer without it (a frame the code
wrote itself, or one it left behind for the next call) kills the worker.

Threat model and limits: docs/code-node.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ductwork.code.errors import CodeError
from ductwork.code.worker import MAX_STDOUT_CHARS
from ductwork.nodes.base import CodeOutcome, NodeError, RetryableError

log = logging.getLogger(__name__)

WORKER_SOURCE = (Path(__file__).parent / "worker.py").read_text(encoding="utf-8")
"""Passed with `-c`: the worker needs no file of ductwork to be readable by its user."""

UNPRIVILEGED_UID = 65534
"""`nobody`: who workers run as when the server runs as root."""

START_TIMEOUT_SECONDS = 30.0
"""How long a new worker may take to answer its ready frame (a loaded 2-core box)."""

EXIT_GRACE_SECONDS = 5.0
"""How long a worker that is exiting on its own (its pipe closed) may take before
it is killed: waiting keeps its exit status for the error message."""

WAITERS_PER_WORKER = 100
"""Callers that may queue for a free worker, per worker; past it a call fails at once."""


def answer_limit(max_output_bytes: int) -> int:
    """The largest answer frame to read: an output of DUCTWORK_MAX_OUTPUT_BYTES plus
    the printed text a worker keeps (UTF-8, up to 4 bytes a character)."""
    return max_output_bytes + 4 * MAX_STDOUT_CHARS + 1024


class WorkerGone(Exception):
    """The worker process died or broke the protocol mid-call."""


class ForgedAnswer(Exception):
    """An answer frame without the call's nonce: written by user code, not the worker."""


FORGED = (
    "the code wrote to its worker's protocol pipe (an answer without this call's "
    "nonce); the worker was killed"
)


@dataclass(slots=True, eq=False)
class _Worker:
    """One worker process and its private directory."""

    process: asyncio.subprocess.Process
    directory: Path
    started: float = field(default_factory=time.perf_counter)
    workflow_id: str | None = None
    """The workflow whose code this worker ran (None: fresh); it serves no other."""

    async def request(self, payload: bytes, nonce: str, max_answer_bytes: int) -> dict[str, Any]:
        """Send one frame, read one answer frame; WorkerGone if the process is gone,
        ForgedAnswer if the answer does not echo `nonce`."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(len(payload).to_bytes(4, "big") + payload)
            await stdin.drain()
            answer = await self.answer(max_answer_bytes)
        except (ConnectionError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            raise WorkerGone(str(exc)) from None
        if answer.get("nonce") != nonce:
            raise ForgedAnswer
        return answer

    async def answer(self, max_answer_bytes: int) -> dict[str, Any]:
        """Read one answer frame."""
        stdout = self.process.stdout
        assert stdout is not None
        size = int.from_bytes(await stdout.readexactly(4), "big")
        if size > max_answer_bytes:
            raise NodeError(
                f"the code's answer is {size:,} bytes; the limit is {max_answer_bytes:,} "
                "(DUCTWORK_MAX_OUTPUT_BYTES)"
            )
        try:
            answer = orjson.loads(await stdout.readexactly(size))
        except orjson.JSONDecodeError as exc:
            raise NodeError(f"main returned a value that is not JSON: {exc}") from None
        if not isinstance(answer, dict):
            raise WorkerGone("malformed answer")
        return answer

    async def kill(self, grace: float = 0.0) -> None:
        """Kill the process (if it still runs), reap it and remove its directory.

        `grace`: seconds to let a process that is exiting on its own finish first.
        Killing it early is harmless but loses its exit status: the kill polls the
        process (Popen.send_signal), reaping it before asyncio's child watcher can,
        which then reports 255.
        """
        if grace and self.process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class CodePool:
    """N warm sandboxed interpreters; implements the `CodeRunner` port (nodes/base.py)."""

    def __init__(
        self,
        *,
        size: int,
        memory_mb: int,
        max_answer_bytes: int,
        python: str = sys.executable,
    ) -> None:
        self.size = size
        self.memory_mb = memory_mb
        self.max_answer_bytes = max_answer_bytes
        self.python = python
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        """Free slots: a worker, or None for a slot whose worker must be started."""
        self._started = False
        self._start_lock = asyncio.Lock()
        self._waiting = 0
        self._busy: set[_Worker] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Start the workers now (otherwise the first call does)."""
        async with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise NodeError("the code worker pool is closed")
            results = await asyncio.gather(
                *(self._spawn() for _ in range(self.size)), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            for result in results:
                self._idle.put_nowait(None if isinstance(result, BaseException) else result)
            self._started = True
            if len(failures) == self.size:
                raise NodeError(f"could not start code workers: {failures[0]}")

    async def _spawn(self) -> _Worker:
        """Start one worker and wait for its ready frame."""
        directory = Path(tempfile.mkdtemp(prefix="ductwork-code-"))
        limits = {"memory_mb": self.memory_mb, "uid": UNPRIVILEGED_UID}
        try:
            if _is_root():
                # The worker drops to `nobody` before running code: let it in its directory.
                os.chown(directory, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            process = await asyncio.create_subprocess_exec(
                self.python,
                "-I",
                "-S",
                "-B",
                "-c",
                WORKER_SOURCE,
                orjson.dumps(limits).decode(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={},
                cwd=directory,
                close_fds=True,
                start_new_session=True,
            )
        except BaseException as exc:
            shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, OSError):
                raise NodeError(f"could not start a code worker: {exc}") from None
            raise
        worker = _Worker(process, directory)
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                ready = await worker.answer(1024)
            if not ready.get("ready"):
                raise WorkerGone("no ready frame")
        except BaseException as exc:
            await worker.kill()
            if isinstance(exc, asyncio.IncompleteReadError | WorkerGone):
                raise NodeError(
                    f"a code worker exited at start ({_exit_reason(process.returncode)})"
                ) from None
            raise
        return worker

    async def call(
        self,
        source: str,
        arguments: Mapping[str, Any],
        *,
        timeout_seconds: float,
        workflow_id: str = "",
    ) -> CodeOutcome:
        """Call `main` of `source` with `arguments` in a free worker (see `CodeRunner`)."""
        nonce = secrets.token_hex(16)
        try:
            payload = orjson.dumps(
                {
                    "source": source,
                    "arguments": arguments,
                    "timeout": timeout_seconds,
                    "nonce": nonce,
                }
            )
        except orjson.JSONEncodeError as exc:
            raise NodeError(f"the code's arguments are not JSON: {exc}") from None
        worker = await self._acquire(workflow_id)
        worker.workflow_id = workflow_id
        self._busy.add(worker)
        healthy = exiting = False
        try:
            async with asyncio.timeout(timeout_seconds):
                answer = await worker.request(payload, nonce, self.max_answer_bytes)
            healthy = answer.get("kind") != "memory"
            # After a MemoryError the worker exits on its own (worker.py).
            exiting = not healthy
        except TimeoutError:
            raise NodeError(
                f"code timed out after {timeout_seconds:g} s (its worker was killed)"
            ) from None
        except WorkerGone:
            await worker.kill(grace=EXIT_GRACE_SECONDS)
            raise NodeError(_died(worker.process.returncode, self.memory_mb)) from None
        except ForgedAnswer:
            raise NodeError(FORGED) from None
        finally:
            self._busy.discard(worker)
            self._release(worker, healthy, exiting)
        return _outcome(answer, self.memory_mb)

    async def _acquire(self, workflow_id: str) -> _Worker:
        if not self._started:
            await self.start()
        if self._closed:
            raise NodeError("the code worker pool is closed")
        if self._idle.empty() and self._waiting >= self.size * WAITERS_PER_WORKER:
            raise RetryableError(
                f"all {self.size} code workers are busy and {self._waiting} calls wait "
                "(DUCTWORK_CODE_POOL_SIZE)"
            )
        self._waiting += 1
        try:
            slot = await self._idle.get()
        finally:
            self._waiting -= 1
        # A worker that ran another workflow's code (which may have changed its state or
        # left frames in its pipe) is never handed over: a fresh one is started instead.
        alive = slot is not None and slot.process.returncode is None
        if slot is not None and alive and slot.workflow_id in (None, workflow_id):
            return slot
        if slot is not None:
            await slot.kill()
        try:
            return await self._spawn()
        except BaseException:
            self._idle.put_nowait(None)
            raise

    def _release(self, worker: _Worker, healthy: bool, exiting: bool = False) -> None:
        """Give the slot back; a worker that timed out, crashed or ran out of memory is
        killed and replaced in the background, so the next call finds a warm one."""
        if healthy and not self._closed:
            self._idle.put_nowait(worker)
            return
        grace = EXIT_GRACE_SECONDS if exiting else 0.0
        task = asyncio.get_running_loop().create_task(self._replace(worker, grace))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, worker: _Worker, grace: float) -> None:
        fresh: _Worker | None = None
        try:
            await worker.kill(grace)
            if not self._closed:
                fresh = await self._spawn()
        except Exception:
            log.exception("could not replace a code worker")
        finally:
            if self._closed and fresh is not None:
                await fresh.kill()
                fresh = None
            self._idle.put_nowait(fresh)

    async def close(self) -> None:
        """Kill every worker and remove their directories."""
        self._closed = True
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        workers = list(self._busy)
        while not self._idle.empty():
            slot = self._idle.get_nowait()
            if slot is not None:
                workers.append(slot)
        await asyncio.gather(*(w.kill() for w in workers), return_exceptions=True)


def _outcome(answer: Mapping[str, Any], memory_mb: int) -> CodeOutcome:
    """The worker's answer as a CodeOutcome, or the NodeError it describes."""
    stdout = str(answer.get("stdout", ""))
    if answer.get("ok"):
        return CodeOutcome(value=answer.get("value"), stdout=stdout)
    kind = answer.get("kind")
    error = str(answer.get("error", "failed"))
    if kind == "memory":
        error = f"code ran out of memory (MemoryError; DUCTWORK_CODE_MEMORY_MB={memory_mb})"
    elif kind == "exception":
        error = f"code raised: {error}"
    raise CodeError(error, stdout)


def _died(returncode: int | None, memory_mb: int) -> str:
    """Why a call failed when its worker died under it."""
    message = f"the code's worker process died ({_exit_reason(returncode)})"
    if returncode is not None and returncode < 0:
        # The interpreter aborts or segfaults when an allocation fails in C code.
        message += (
            f"; it may have run out of memory (DUCTWORK_CODE_MEMORY_MB={memory_mb}) "
            "or crashed the interpreter"
        )
    return message


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
