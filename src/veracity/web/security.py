"""Session cookie, CSRF tokens and response headers for the web UI.

The session cookie holds the API key the user signed in with (HttpOnly, so page scripts never
see it; SameSite=Strict, so other sites cannot send it). Every request re-checks the key with
the service, so revoking a key ends its browser sessions at once.

CSRF: each form carries ``HMAC(api_key, "veracity-csrf")``. Only someone who holds the key can
compute it, and a cross-site page cannot read it from ours, so no server-side secret or token
store is needed. The sign-in form, before any key exists, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "CSP",
    "CSRF_FIELD",
    "PRE_CSRF_COOKIE",
    "SESSION_COOKIE",
    "cookie_kwargs",
    "csrf_token",
    "new_pre_token",
    "same_token",
    "security_headers",
]

SESSION_COOKIE = "veracity_session"
PRE_CSRF_COOKIE = "veracity_signin_csrf"
CSRF_FIELD = "csrf_token"

# Everything is served from our own origin: scripts only from /ui/static, images from ourselves or
# data: URIs (face crops and heatmaps are embedded in reports). Inline styles stay allowed for
# the SVG charts, which colour their series with style/fill attributes.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def csrf_token(api_key: str) -> str:
    return hmac.new(api_key.encode("utf-8"), b"veracity-csrf", hashlib.sha256).hexdigest()


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison that is False when either side is missing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def cookie_kwargs(*, secure: bool, max_age: int | None = 8 * 3600) -> dict[str, object]:
    """Attributes for every cookie the UI sets."""
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/ui", "max_age": max_age}


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
