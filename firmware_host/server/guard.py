"""Who may use the rig server: a token for every client, as Jupyter guards a local server.

Loopback is not a guard: every local user and program can open 127.0.0.1. So the server
has a token (random per start, or ``$NEEDLECTL_TOKEN``) and every request on either
listener must carry it:

* the CLI reads it from the server's announcement in the 0700 runtime directory (a file
  only its user can read) and sends it as ``Authorization: Bearer``;
* the address ``needlectl serve`` prints carries it once (``?token=``): the page answers
  that first visit with an HttpOnly, SameSite=Strict cookie and a redirect to the bare
  address, so the token leaves the address bar and no script (nor another site) can read
  or send it;
* a script may send ``?token=`` or ``Authorization: Bearer`` (Jupyter's two ways).

So the Unix socket's mode (0600) and the runtime directory's (0700) are what decide who
can drive the rig; the TCP listener no longer lets everyone else in.
"""

from __future__ import annotations

import secrets

from aiohttp import web

TOKEN_ENV = "NEEDLECTL_TOKEN"
TOKEN_MIN_CHARS = 16  # a guessable token is no guard: 16 url-safe chars ≈ 96 bits
COOKIE_PREFIX = "needlectl-token-"  # + the TCP port: cookies ignore ports, servers don't


class TokenError(ValueError):
    """A token the operator gave that cannot guard anything."""


def make_token(given: str | None) -> str:
    """The server's token: the operator's (checked) or a random one."""
    if given is None or given == "":
        return secrets.token_urlsafe(24)
    if len(given) < TOKEN_MIN_CHARS or any(c.isspace() for c in given):
        raise TokenError(
            f"${TOKEN_ENV} is {len(given)} characters: a token must be at least"
            f" {TOKEN_MIN_CHARS}, with no spaces (or unset it: a random one is made)"
        )
    return given


def cookie_name(http_port: int) -> str:
    return f"{COOKIE_PREFIX}{http_port}"


def presented(request: web.Request, http_port: int) -> tuple[str, str]:
    """The token a request carries and how: ("bearer"|"query"|"cookie"|"", value)."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return "bearer", auth[len("Bearer ") :]
    if "token" in request.query:
        return "query", request.query["token"]
    cookie = request.cookies.get(cookie_name(http_port))
    if cookie:
        return "cookie", cookie
    return "", ""


def token_ok(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


def set_cookie(response: web.StreamResponse, token: str, http_port: int) -> None:
    """The page's copy of the token: sent back only to this origin, never to scripts."""
    response.set_cookie(cookie_name(http_port), token, httponly=True, samesite="Strict", path="/")
