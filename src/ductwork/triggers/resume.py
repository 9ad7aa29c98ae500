"""Resume links and the resume use case: how a parked `wait` node gets its answer.

A link is `{base}/resume/{token}` (`ResumeLinks.url`). The token carries the
execution id and the node id, and an HMAC-SHA256 over both, so it can be
neither guessed nor altered: a forged token is refused before the store is
asked anything. The HMAC key is derived with HKDF-SHA256 and a fixed label from
the credentials key ring (`DUCTWORK_SECRET_KEY`, else `data_dir/secret.key`),
which every process that runs workflows holds already: nothing of it is stored
in a row, and links keep working across restarts. Links are signed with the
newest key and checked against every configured key, so rotating the
credentials key keeps old links valid for as long as the old key is kept.

A link is a pure function of (execution id, node id): it is known before the
node runs, so an email node earlier in the run can send it (`{{ run.resume_url }}`).
Single use is the store's job: `Store.resume_node` hands the payload over once
(compare-and-set), and every later post finds the node answered (410).

Whoever holds a link may answer it, so the API shows links only to principals that
may RUN (`ductwork.security.resume_links`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ductwork.models import NodeStatus, Run, utcnow
from ductwork.nodes.base import NodeType
from ductwork.queue.base import Queue
from ductwork.security.audit import AuditLog
from ductwork.settings import Settings
from ductwork.store.base import Store

HKDF_LABEL: Final = b"ductwork resume links v1"
"""The HKDF `info` that makes the link key differ from every other use of the key ring."""

MAX_TOKEN_CHARS: Final = 1024
"""Longer tokens are refused unread (an execution id and a node id fit in far less)."""

_SEPARATOR: Final = b"\n"
"""Between execution id and node id in the signed payload: execution ids are UUIDs,
so the first newline always ends the execution id, whatever the node id holds."""


class ForgedLink(Exception):
    """The token was not made by this deployment (or was altered)."""


def base_url(settings: Settings) -> str:
    """Where people reach this server: DUCTWORK_PUBLIC_URL, else `http://{host}:{port}`."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{settings.port}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(key: str) -> bytes:
    """The link key for one credentials key (a Fernet key: url-safe base64 of 32 bytes)."""
    # Imported here: `cryptography` costs a cold start tens of milliseconds, and only a
    # run with a `wait` node (or a resume call) makes or checks a link.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    material = base64.urlsafe_b64decode(key.encode("ascii"))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_LABEL).derive(material)


class ResumeLinks:
    """Makes and checks resume links; one per process (`NodeServices.resume_links`).

    `keys` returns the credentials keys, newest first (`KeyRing.keys`, which picks up a
    rotated key file); the derived keys are cached until that list changes.
    """

    def __init__(self, keys: Callable[[], Sequence[str]], base: str) -> None:
        self._keys = keys
        self.base = base.rstrip("/")
        self._derived_for: tuple[str, ...] = ()
        self._derived: tuple[bytes, ...] = ()

    def _link_keys(self) -> tuple[bytes, ...]:
        keys = tuple(self._keys())
        if keys != self._derived_for:
            self._derived = tuple(_derive(key) for key in keys)
            self._derived_for = keys
        return self._derived

    @staticmethod
    def _mac(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()

    def token(self, execution_id: str, node_id: str) -> str:
        """The signed token for one node of one run."""
        return self._token(self._link_keys()[0], execution_id, node_id)

    def _token(self, key: bytes, execution_id: str, node_id: str) -> str:
        payload = execution_id.encode() + _SEPARATOR + node_id.encode()
        return f"{_b64(payload)}.{_b64(self._mac(key, payload))}"

    def url(self, execution_id: str, node_id: str) -> str:
        """The resume link for one node of one run."""
        return f"{self.base}/resume/{self.token(execution_id, node_id)}"

    def urls(self, execution_id: str, node_ids: Iterable[str]) -> dict[str, str]:
        """The resume links of several nodes of one run (the key ring is read once)."""
        key = self._link_keys()[0]
        return {
            node_id: f"{self.base}/resume/{self._token(key, execution_id, node_id)}"
            for node_id in node_ids
        }

    def verify(self, token: str) -> tuple[str, str]:
        """(execution id, node id) of a token this deployment made; ForgedLink otherwise.

        The signature is compared in constant time against every configured key.
        """
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise ForgedLink
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload = _unb64(encoded_payload)
            mac = _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise ForgedLink from None
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in self._link_keys()):
            raise ForgedLink
        execution_id, _, node_id = payload.partition(_SEPARATOR)
        try:
            return execution_id.decode(), node_id.decode()
        except UnicodeDecodeError:  # signed by us, so never; but never a 500 either
            raise ForgedLink from None


# The use case -------------------------------------------------------------------------

Refusal = Literal["used", "not_yet", "ended", "not_found", "not_resumable"]
"""Why a node could not be resumed: it was answered before; it has not started waiting
yet (try again); it no longer waits (it timed out, or the run ended); no such run or
node; the node is not one that waits to be resumed."""

Outcome = Literal["resumed", Refusal]
"""What a resume came to: handed over (the run goes on), or why not."""

LinkState = Literal["open", Refusal]
"""Where a link stands: "open" (the node waits for its answer now), or why a post
would be refused."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a resume link's page shows: where the link stands and the wait node's texts."""

    state: LinkState
    title: str = ""
    message: str = ""
    workflow_name: str = ""


class Resumer:
    """Resumes parked wait nodes (by link or by API) and reads what their pages show."""

    def __init__(
        self,
        store: Store,
        queue: Queue,
        registry: Mapping[str, NodeType[Any]],
        audit: AuditLog,
    ) -> None:
        self._store = store
        self._queue = queue
        self._registry = registry
        self._audit = audit

    async def resume(
        self, execution_id: str, node_id: str, payload: Any, *, via: Literal["link", "api"]
    ) -> Outcome:
        """Hand `payload` to the parked node once; on success its run is enqueued.

        The store's compare-and-set decides (a second post finds the node answered);
        only a refusal reads the run, to say why.
        """
        stored = await self._store.resume_node(execution_id, node_id, payload, utcnow())
        if stored == "resumed":
            # The store set the run's wake time to now: the sweep would drive it within
            # a sweep interval anyway; enqueuing drives it at once.
            await self._queue.enqueue(execution_id)
            await self._audit.record(
                "run.resume",
                target=f"execution:{execution_id}",
                details={"node_id": node_id, "via": via},
            )
            return "resumed"
        if stored == "used":
            return "used"
        return self._why_not(await self._store.get_run(execution_id, with_events=False), node_id)

    def _why_not(self, run: Run | None, node_id: str) -> Refusal:
        """Why a node that is not parked for a person cannot be resumed."""
        if run is None:
            return "not_found"
        spec = next((node for node in run.definition.nodes if node.id == node_id), None)
        if spec is None:
            return "not_found"
        node_type = self._registry.get(spec.type)
        if node_type is None or not node_type.resumable:
            return "not_resumable"
        state = run.node_states.get(node_id)
        if state is not None and state.meta.get("resumed"):
            return "used"
        if not run.status.finished and (
            state is None or state.status in (NodeStatus.PENDING, NodeStatus.RUNNING)
        ):
            return "not_yet"
        return "ended"

    async def prompt(self, execution_id: str, node_id: str) -> Prompt:
        """What the link's page shows (one read; nothing is changed)."""
        run = await self._store.get_run(execution_id, with_events=False)
        state = None if run is None else run.node_states.get(node_id)
        if run is None or state is None or state.status is not NodeStatus.WAITING:
            return Prompt(self._why_not(run, node_id))
        if state.meta.get("resumed"):
            return Prompt("used")
        if not state.meta.get("resumable"):
            return Prompt(self._why_not(run, node_id))
        if state.wake_at is not None and state.wake_at <= utcnow():
            return Prompt("ended")
        return Prompt(
            "open",
            title=str(state.meta.get("title") or ""),
            message=str(state.meta.get("message") or ""),
            workflow_name=run.definition.name,
        )
