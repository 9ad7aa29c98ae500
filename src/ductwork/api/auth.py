"""Accounts over HTTP: sign-in, sessions, API keys, users and the first-run setup link.

Sign-in (`POST /auth/login`, email + password or an API key) sets two cookies:
`dw_session` (HttpOnly, SameSite=Lax, Secure over HTTPS or with
DUCTWORK_COOKIE_SECURE=always) and `dw_csrf` (readable by the page), whose value
unsafe requests authenticated by cookie echo in `X-CSRF-Token`
(`ductwork.api.guard`). Failed sign-ins count towards the per-address "login" rate
limit; past it every sign-in from that address is 429 until the window moves on.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ductwork.api.deps import App, CurrentPrincipal
from ductwork.api.limits import CheckedJSONRoute, Limit, Offset, ResourceId
from ductwork.api.responses import JSON
from ductwork.api.schemas import ErrorDetail, Problem, error_responses
from ductwork.security.accounts import (
    AccountConflict,
    AccountError,
    AccountNotFound,
    InvalidField,
    NotAllowed,
    SetupRefused,
    key_view,
    user_view,
)
from ductwork.security.models import Permission, Principal, Role, User
from ductwork.security.sessions import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for
from ductwork.service import Ductwork

router = APIRouter(tags=["auth"], route_class=CheckedJSONRoute)

_ = (ErrorDetail, Problem)  # the error bodies, documented through error_responses()

Email = Annotated[str, Field(min_length=3, max_length=254, examples=["ada@example.com"])]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Name = Annotated[str, Field(max_length=200)]


# Models -------------------------------------------------------------------------------
class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserCreate(BaseModel):
    email: Email
    display_name: Name = ""
    role: Role
    password: Password


class UserUpdate(BaseModel):
    """Only the fields given change."""

    display_name: Name | None = None
    role: Role | None = None
    password: Password | None = None
    disabled: bool | None = None


class KeyCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = Field(description="At most your own role (and the owner's).")
    expires_at: datetime | None = Field(default=None, description="Refused from then on.")
    user_id: str | None = Field(
        default=None, max_length=200, description="Admins: make the key for this user."
    )


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str = Field(description="`dw_<prefix>`: the public part, to recognise a key.")
    owner_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class LoginRequest(BaseModel):
    """Either `email` and `password`, or `api_key`."""

    email: Annotated[str, Field(max_length=254)] | None = None
    password: Password | None = None
    api_key: Annotated[str, Field(max_length=300)] | None = None


class SetupRequest(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    email: Email
    display_name: Name = ""
    password: Password


class SessionOut(BaseModel):
    kind: Literal["user", "key"]
    role: Role
    user: UserOut | None = None
    key_id: str | None = None
    csrf_token: str = Field(description="Send it as X-CSRF-Token on unsafe requests.")
    expires_at: datetime


class MeOut(BaseModel):
    kind: Literal["user", "key", "admin_key", "anonymous"]
    role: Role
    name: str
    user: UserOut | None = None
    key_id: str | None = None
    permissions: list[Permission]
    session: bool = Field(description="Authenticated by the session cookie.")


# Helpers ------------------------------------------------------------------------------
def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _audit(app: Ductwork, action: str, **fields: Any) -> None:
    audit = getattr(app, "audit", None)  # the audit helper's AuditLog, once merged
    if audit is not None:
        await audit.record(action, **fields)


def _secure(app: Ductwork, request: Request) -> bool:
    mode = app.settings.cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def _set_cookies(response: Response, app: Ductwork, request: Request, token: str) -> str:
    csrf = csrf_token_for(token)
    secure = _secure(app, request)
    max_age = int(app.settings.session_ttl_seconds)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        secure=secure,
        samesite="lax",
    )
    return csrf


async def _too_many(app: Ductwork, request: Request, *, count: bool) -> JSON | None:
    limiter = getattr(app, "limiter", None)
    if limiter is None:
        return None
    client = _client(request)
    retry = await (limiter.hit if count else limiter.peek)("login", client)
    if retry is None:
        return None
    return JSON(
        status_code=429,
        content={"detail": f"too many failed sign-ins from this address; retry in {retry:.0f} s"},
        headers={"Retry-After": str(int(retry))},
    )


async def _session_answer(
    app: Ductwork, request: Request, principal: Principal, user: User | None, status: int = 200
) -> JSON:
    token, session = await app.accounts.open_session(
        user_id=principal.user_id if principal.kind == "user" else None,
        key_id=principal.key_id if principal.kind == "key" else None,
    )
    body = SessionOut(
        kind="user" if principal.kind == "user" else "key",
        role=principal.role,
        user=UserOut(**user_view(user)) if user is not None else None,
        key_id=principal.key_id,
        csrf_token=csrf_token_for(token),
        expires_at=session.expires_at,
    )
    response = JSON(status_code=status, content=body.model_dump(mode="json"))
    _set_cookies(response, app, request, token)
    return response


# Sign-in ------------------------------------------------------------------------------
@router.post(
    "/auth/login",
    summary="Sign in (email + password, or an API key): sets the session cookie",
    response_model=SessionOut,
    responses=error_responses(401, 422, 429),
)
async def login(app: App, request: Request, body: LoginRequest) -> Response:
    if body.api_key is None and (body.email is None or body.password is None):
        raise InvalidField("email", "send email and password, or api_key")
    limited = await _too_many(app, request, count=False)
    if limited is not None:
        return limited
    principal: Principal | None = None
    user: User | None = None
    if body.api_key is not None:
        found = await app.authenticator.from_bearer(body.api_key)
        # The admin key is for automation; a browser session needs a user or a user's key.
        principal = found if found is not None and found.kind == "key" else None
    else:
        assert body.email is not None and body.password is not None
        user = await app.accounts.check_password(body.email, body.password)
        if user is not None:
            principal = Principal(kind="user", role=user.role, user_id=user.id, name=user.email)
    if principal is None:
        await _audit(
            app,
            "login.failure",
            outcome="failed",
            details={"method": "api_key" if body.api_key else "password"},
        )
        limited = await _too_many(app, request, count=True)
        if limited is not None:
            return limited
        return JSON(
            status_code=401,
            content={"detail": "wrong email or password, or the API key is not valid"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    await _audit(app, "login.success", principal=principal, target=principal.actor)
    return await _session_answer(app, request, principal, user)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="End the session (clears the cookies)",
    responses=error_responses(401, 403),
)
async def logout(app: App, principal: CurrentPrincipal) -> Response:
    if principal.session_id is not None:
        await app.accounts.end_session(principal.session_id)
        await _audit(app, "logout", target=principal.actor)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get(
    "/auth/me",
    summary="Who the request is authenticated as",
    response_model=MeOut,
    responses=error_responses(401),
)
async def me(app: App, principal: CurrentPrincipal) -> MeOut:
    user = None
    if principal.kind == "user" and principal.user_id is not None:
        found = await app.accounts.security.get_user(principal.user_id)
        user = UserOut(**user_view(found)) if found is not None else None
    return MeOut(
        kind=principal.kind,
        role=principal.role,
        name=principal.name,
        user=user,
        key_id=principal.key_id,
        permissions=sorted(p for p in Permission if principal.can(p)),
        session=principal.session_id is not None,
    )


# API keys -----------------------------------------------------------------------------
@router.post(
    "/auth/keys",
    status_code=201,
    summary="Create an API key (shown once)",
    response_model=KeyCreated,
    responses=error_responses(401, 403, 422),
)
async def create_key(app: App, principal: CurrentPrincipal, body: KeyCreate) -> JSON:
    record, key = await app.accounts.create_key(
        principal, body.name, body.role, expires_at=body.expires_at, owner_id=body.user_id
    )
    return JSON(status_code=201, content={**key_view(record), "key": key})


@router.get(
    "/auth/keys",
    summary="API keys: your own, or everyone's for admins (`all=true`)",
    response_model=list[KeyOut],
    responses=error_responses(401, 403, 422),
)
async def list_keys(
    app: App,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    offset: Offset = 0,
    all_keys: Annotated[bool, Query(alias="all", description="Admins: every user's keys.")] = False,
) -> JSON:
    keys = await app.accounts.list_keys(principal, limit, offset, everyone=all_keys)
    return JSON([key_view(key) for key in keys])


@router.delete(
    "/auth/keys/{key_id}",
    status_code=204,
    summary="Revoke an API key (at once, on every process)",
    responses=error_responses(401, 403, 404, 422),
)
async def revoke_key(app: App, principal: CurrentPrincipal, key_id: ResourceId) -> Response:
    await app.accounts.revoke_key(principal, key_id)
    return Response(status_code=204)


# Users (admins) ----------------------------------------------------------------------------
@router.get(
    "/auth/users",
    summary="List users",
    response_model=list[UserOut],
    responses=error_responses(401, 403, 422),
)
async def list_users(app: App, limit: Limit = 100, offset: Offset = 0) -> JSON:
    users = await app.accounts.list_users(limit, offset)
    return JSON([user_view(user) for user in users])


@router.post(
    "/auth/users",
    status_code=201,
    summary="Create a user",
    response_model=UserOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_user(app: App, body: UserCreate) -> JSON:
    user = await app.accounts.create_user(body.email, body.password, body.role, body.display_name)
    return JSON(status_code=201, content=user_view(user))


@router.patch(
    "/auth/users/{user_id}",
    summary="Change a user's role, name, password or disabled flag",
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_user(app: App, user_id: ResourceId, body: UserUpdate) -> JSON:
    user = await app.accounts.update_user(
        user_id,
        role=body.role,
        display_name=body.display_name,
        password=body.password,
        disabled=body.disabled,
    )
    return JSON(user_view(user))


@router.delete(
    "/auth/users/{user_id}",
    status_code=204,
    summary="Delete a user (their keys are revoked, their sessions ended)",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_user(app: App, user_id: ResourceId) -> Response:
    await app.accounts.delete_user(user_id)
    return Response(status_code=204)


# First run ----------------------------------------------------------------------------
_SETUP_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ductwork setup</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="ui/favicon.svg" type="image/svg+xml">
<style>body{{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem}}
button{{margin-top:1rem;padding:.5rem 1rem}}#msg{{color:#b00;margin-top:1rem}}</style></head>
<body><h1>ductwork: create the first admin</h1>
<form id="setup"><input type="hidden" name="token" value="{token}">
<label for="email">Email</label><input id="email" name="email" type="email" required>
<label for="display_name">Name</label><input id="display_name" name="display_name">
<label for="password">Password (at least 10 characters)</label>
<input id="password" name="password" type="password" minlength="10" required>
<button type="submit">Create admin</button></form><p id="msg"></p>
<script>
document.getElementById("setup").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const body = Object.fromEntries(new FormData(event.target));
  // Relative URLs: under a root path (DUCTWORK_ROOT_PATH behind a proxy) they stay in it.
  const answer = await fetch("auth/setup", {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(body)}});
  if (answer.ok) {{ window.location = "ui/"; return; }}
  const problem = await answer.json().catch(() => ({{}}));
  document.getElementById("msg").textContent =
    problem.detail && problem.detail.map
      ? problem.detail.map(d => d.field + ": " + d.message).join("; ")
      : (problem.detail || "setup failed");
}});
</script></body></html>
"""


@router.get(
    "/setup",
    summary="The first-run page: create the first admin (token from `ductwork serve`)",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The setup form."}},
)
async def setup_page(
    token: Annotated[str, Query(max_length=200, description="The setup link's token.")] = "",
) -> HTMLResponse:
    return HTMLResponse(_SETUP_PAGE.format(token=html.escape(token, quote=True)))


@router.post(
    "/auth/setup",
    status_code=201,
    summary="Create the first admin with the setup link's token, and sign them in",
    response_model=SessionOut,
    responses=error_responses(403, 422, 429),
)
async def complete_setup(app: App, request: Request, body: SetupRequest) -> Response:
    limited = await _too_many(app, request, count=False)
    if limited is not None:
        return limited
    try:
        user = await app.accounts.complete_setup(
            body.token, body.email, body.password, body.display_name
        )
    except SetupRefused:
        limited = await _too_many(app, request, count=True)
        if limited is not None:
            return limited
        raise
    principal = Principal(kind="user", role=user.role, user_id=user.id, name=user.email)
    return await _session_answer(app, request, principal, user, status=201)


# Errors -------------------------------------------------------------------------------
def install(api: FastAPI) -> None:
    """Answer account errors: 422 naming the field, 404, 409, 403."""

    @api.exception_handler(AccountError)
    async def account_error(_: Request, exc: AccountError) -> JSON:
        if isinstance(exc, InvalidField):
            return JSON(
                status_code=422,
                content={
                    "message": "request is invalid",
                    "detail": [{"node_id": None, "field": exc.field, "message": exc.message}],
                },
            )
        status = 403
        if isinstance(exc, AccountNotFound):
            status = 404
        elif isinstance(exc, AccountConflict):
            status = 409
        elif isinstance(exc, NotAllowed | SetupRefused):
            status = 403
        return JSON(status_code=status, content={"detail": str(exc)})
