"""GuardedHttpClient against real servers on 127.0.0.1: SSRF guard, redirects, caps, timeouts."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator

import pytest

from ductwork.clients.http import (
    BlockedDestination,
    GuardedHttpClient,
    HttpResponse,
    blocked_reason,
)
from ductwork.nodes.base import NodeError, RetryableError
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply


@pytest.fixture
def server() -> Iterator[RecordingHttpServer]:
    with RecordingHttpServer() as srv:
        yield srv


@pytest.fixture
def other_server() -> Iterator[RecordingHttpServer]:
    with RecordingHttpServer() as srv:
        yield srv


@pytest.fixture
async def guarded() -> AsyncIterator[GuardedHttpClient]:
    """A client with the default settings: private networks blocked."""
    client = GuardedHttpClient(Settings())
    yield client
    await client.close()


def make_client(**settings: object) -> GuardedHttpClient:
    return GuardedHttpClient(Settings(**settings))  # type: ignore[arg-type]


@pytest.fixture
async def open_client() -> AsyncIterator[GuardedHttpClient]:
    """A client allowed to reach private networks, for tests of everything but the guard."""
    client = make_client(http_allow_private_networks=True)
    yield client
    await client.close()


# The SSRF guard.


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "IPv4-mapped loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "metadata"),
        ("100.64.0.1", "non-public"),
    ],
)
async def test_internal_destinations_are_refused(
    guarded: GuardedHttpClient, server: RecordingHttpServer, host: str, reason: str
) -> None:
    url = f"http://{host}:{server.port}/secret"
    with pytest.raises(BlockedDestination) as caught:
        await guarded.request("GET", url, timeout=2)
    message = str(caught.value)
    assert reason in message
    assert host.strip("[]") in message
    assert "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS" in message
    assert "DUCTWORK_HTTP_ALLOWED_HOSTS" in message
    # The refusal happens before connecting: the real server on 127.0.0.1 saw nothing.
    assert server.calls() == 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/file", "gopher://127.0.0.1:70/"]
)
async def test_non_http_schemes_are_refused(guarded: GuardedHttpClient, url: str) -> None:
    with pytest.raises(BlockedDestination, match="only http and https"):
        await guarded.request("GET", url)


async def test_allow_private_networks_lets_local_calls_through(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    response = await open_client.request("GET", server.url("/ok"))
    assert response.status_code == 200
    assert server.calls("/ok") == 1


async def test_allowed_hosts_entry_with_port_only_opens_that_port(
    server: RecordingHttpServer, other_server: RecordingHttpServer
) -> None:
    client = make_client(http_allowed_hosts=[f"127.0.0.1:{server.port}"])
    try:
        response = await client.request("GET", server.url("/ok"))
        assert response.status_code == 200
        with pytest.raises(BlockedDestination, match="loopback"):
            await client.request("GET", other_server.url("/ok"))
        assert other_server.calls() == 0
    finally:
        await client.close()


async def test_allowed_hosts_entry_without_port_opens_every_port(
    server: RecordingHttpServer, other_server: RecordingHttpServer
) -> None:
    # The comma-separated env spelling, as DUCTWORK_HTTP_ALLOWED_HOSTS would give it.
    client = make_client(http_allowed_hosts="example.invalid, LOCALHOST")
    try:
        for srv in (server, other_server):
            response = await client.request("GET", f"http://localhost:{srv.port}/ok")
            assert response.status_code == 200
        with pytest.raises(BlockedDestination):
            await client.request("GET", server.url("/ok"))  # 127.0.0.1 is not "localhost"
    finally:
        await client.close()


async def test_redirect_from_allowed_host_to_loopback_is_refused_at_the_hop(
    server: RecordingHttpServer, other_server: RecordingHttpServer
) -> None:
    server.script("/start", Reply.redirect(other_server.url("/internal")))
    client = make_client(http_allowed_hosts=[f"127.0.0.1:{server.port}"])
    try:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", server.url("/start"))
    finally:
        await client.close()
    assert "redirect from" in str(caught.value)
    assert server.calls("/start") == 1
    assert other_server.calls() == 0


async def test_redirect_to_a_file_url_is_refused(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    server.script("/start", Reply.redirect("file:///etc/passwd"))
    with pytest.raises(BlockedDestination, match="only http and https"):
        await open_client.request("GET", server.url("/start"))


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("64:ff9b::808:808", False),  # NAT64 of a public address
        ("127.8.9.10", True),
        ("172.16.0.1", True),
        ("169.254.1.1", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("::", True),
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1
        ("2002:a9fe:a9fe::", True),  # 6to4 wrapping the metadata address
        ("64:ff9b::a00:1", True),  # NAT64 wrapping 10.0.0.1
        ("::ffff:10.0.0.1", True),
    ],
)
def test_address_classification(address: str, blocked: bool) -> None:
    assert (blocked_reason(ipaddress.ip_address(address)) is not None) is blocked


# Requests, redirects and responses.


async def test_request_sends_method_headers_params_and_json(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    response = await open_client.request(
        "put",
        server.url("/items?fixed=1"),
        headers={"X-Trace": "abc"},
        params={"page": 2, "tags": ["a", "b"], "flag": True, "filter": {"k": "v"}},
        json={"name": "widget", "price": 9.5},
    )
    assert response.status_code == 200
    [seen] = server.requests("/items")
    assert seen.method == "PUT"
    assert seen.headers["x-trace"] == "abc"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("ductwork/")
    assert seen.query == {
        "fixed": ["1"],
        "page": ["2"],
        "tags": ["a", "b"],
        "flag": ["true"],
        "filter": ['{"k":"v"}'],
    }
    assert seen.json() == {"name": "widget", "price": 9.5}
    # The echo server answered JSON, so parsed() gives the object.
    assert response.parsed()["method"] == "PUT"


async def test_redirects_are_followed_with_correct_methods(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    server.script("/see-other", Reply.redirect("/landing", status=303))
    server.script("/temporary", Reply.redirect(server.url("/landing"), status=307))
    response = await open_client.request("POST", server.url("/see-other"), json={"a": 1})
    assert response.status_code == 200
    assert response.history == [server.url("/see-other")]
    assert response.url == server.url("/landing")
    response = await open_client.request("POST", server.url("/temporary"), json={"a": 1})
    first, second = server.requests("/landing")
    assert (first.method, first.body) == ("GET", b"")  # 303 turns POST into GET
    assert (second.method, second.json()) == ("POST", {"a": 1})  # 307 keeps both


async def test_too_many_redirects(server: RecordingHttpServer) -> None:
    server.script("/loop", Reply.redirect("/loop"))
    client = make_client(http_allow_private_networks=True, http_max_redirects=3)
    try:
        with pytest.raises(NodeError, match="too many redirects") as caught:
            await client.request("GET", server.url("/loop"))
    finally:
        await client.close()
    assert not isinstance(caught.value, RetryableError)
    assert server.calls("/loop") == 4  # the first request and three redirects


async def test_a_cross_origin_redirect_drops_auth_and_sensitive_headers(
    open_client: GuardedHttpClient, server: RecordingHttpServer, other_server: RecordingHttpServer
) -> None:
    # Another port is another origin. httpx would keep Proxy-Authorization and any
    # custom secret header on that hop; same-origin hops keep them all.
    server.script("/away", Reply.redirect(other_server.url("/landing")))
    server.script("/stay", Reply.redirect("/here"))
    headers = {
        "Authorization": "Bearer tok-abcdef",
        "Proxy-Authorization": "Basic cHJveHk6cHc=",
        "X-Api-Key": "k-12345",
        "X-Plain": "kept",
    }
    for path in ("/away", "/stay"):
        await open_client.request(
            "GET", server.url(path), headers=headers, sensitive_headers=("x-api-key",)
        )
    [landed] = other_server.requests("/landing")
    assert landed.headers["x-plain"] == "kept"
    for name in ("authorization", "proxy-authorization", "x-api-key"):
        assert name not in landed.headers, name
    [same_origin] = server.requests("/here")
    assert same_origin.headers["x-api-key"] == "k-12345"
    assert same_origin.headers["proxy-authorization"] == "Basic cHJveHk6cHc="
    assert same_origin.headers["authorization"] == "Bearer tok-abcdef"


async def test_one_connection_is_reused_across_requests(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    for _ in range(3):
        await open_client.request("GET", server.url("/a"))
    assert len({seen.peer for seen in server.requests("/a")}) == 1


async def test_cookies_do_not_leak_between_requests(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    server.script("/login", Reply(headers={"Set-Cookie": "session=s3cret; Path=/"}))
    response = await open_client.request("GET", server.url("/login"))
    assert "session=s3cret" in response.headers["set-cookie"]
    await open_client.request("GET", server.url("/next"))
    [seen] = server.requests("/next")
    assert "cookie" not in seen.headers


# Size cap and timeouts.


@pytest.mark.parametrize("chunked", [False, True])
async def test_response_size_cap(server: RecordingHttpServer, chunked: bool) -> None:
    server.script("/big", Reply(size=50_000, chunked=chunked, chunk_size=4096))
    server.script("/fits", Reply(size=10_000, chunked=chunked, chunk_size=4096))
    client = make_client(http_allow_private_networks=True, http_max_response_bytes=10_000)
    try:
        with pytest.raises(NodeError, match="over the limit of 10000 bytes") as caught:
            await client.request("GET", server.url("/big"))
        assert not isinstance(caught.value, RetryableError)
        assert "DUCTWORK_HTTP_MAX_RESPONSE_BYTES" in str(caught.value)
        response = await client.request("GET", server.url("/fits"))
        assert len(response.body) == 10_000
    finally:
        await client.close()


async def test_slow_server_times_out_as_retryable(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    # The reply would come after 5 s (a success, were the timeout ignored).
    server.script("/slow", Reply(delay=5))
    with pytest.raises(RetryableError, match="timed out"):
        await open_client.request("GET", server.url("/slow"), timeout=0.3)
    assert server.calls("/slow") == 1, "one attempt: retrying is the engine's decision"
    assert server.completed("/slow") == 0, "the client gave up before the reply was sent"


async def test_timeout_bounds_the_whole_exchange_not_each_read(
    open_client: GuardedHttpClient, server: RecordingHttpServer
) -> None:
    # Each chunk arrives well within the timeout, but the body as a whole (2 s) does not:
    # a client that timed each read alone would get the whole body.
    server.script("/drip", Reply(size=40, chunk_size=1, chunk_interval=0.05, chunked=True))
    with pytest.raises(RetryableError, match=r"timed out after 0\.3 s"):
        await open_client.request("GET", server.url("/drip"), timeout=0.3)
    assert server.calls("/drip") == 1


async def test_connection_refused_is_retryable(open_client: GuardedHttpClient) -> None:
    with RecordingHttpServer() as gone:
        url = gone.url("/x")
    with pytest.raises(RetryableError, match="failed"):
        await open_client.request("GET", url, timeout=2)


# Response helpers.


def test_parsed_json_text_and_charset() -> None:
    as_json = HttpResponse(200, {"content-type": "text/plain"}, b'{"a": [1, 2]}')
    assert as_json.parsed() == {"a": [1, 2]}
    latin = HttpResponse(
        200, {"content-type": "text/html; charset=ISO-8859-1"}, "café".encode("latin-1")
    )
    assert latin.parsed() == "café"
    assert HttpResponse(204, {}, b"").parsed() == ""
    broken = HttpResponse(200, {"content-type": "application/json"}, b"{not json")
    assert broken.parsed() == "{not json"
    with pytest.raises(ValueError):
        broken.json()
