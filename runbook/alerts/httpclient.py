"""HTTP requests for channels and the `http` step: a redirect is never silent.

urllib's default handler follows 301/302/303 by turning a POST into a GET and
dropping its body: a webhook answered with a redirect was "delivered" to
nobody. Here a redirect is either refused (`Redirected`, with the status and
the Location) or, when the caller allows it, followed with the same method and
body (the 307/308 rule for every 3xx), at most `max_redirects` times, only to
http(s) URLs. Headers the caller set (tokens from `{from_env}`) go only to the
origin they were meant for: a redirect to another scheme, host or port keeps
just Content-Type and User-Agent.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
_KEPT_ACROSS_ORIGINS = {"content-type", "user-agent"}


class HttpError(Exception):
    """The request could not be made or answered; the message says why.
    `sent`: it had gone out when that happened (no answer, or a broken one),
    so the far side may have acted on it."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


class Redirected(HttpError):
    """A redirect the caller does not follow (or one that may not be followed)."""

    def __init__(self, status: int, location: str, why: str) -> None:
        super().__init__(f"HTTP {status} redirect to {location or '(no Location)'}: {why}")
        self.status = status
        self.location = location


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str  # the URL that answered (after redirects)
    redirects: int = 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hand every 3xx back to `request()`, which decides."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def is_http_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower() in SCHEMES and bool(parts.netloc)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def request(
    url: str,
    *,
    method: str,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    follow_redirects: bool = False,
    max_redirects: int = MAX_REDIRECTS,
    context: ssl.SSLContext | None = None,
    limit: int = 10_000_000,
) -> Response:
    """One request; 4xx/5xx are returned, not raised (the caller judges them).

    Raises Redirected for a redirect not followed, HttpError when nothing answered.
    """
    if not is_http_url(url):
        raise HttpError(f"only http:// and https:// URLs can be requested, not {url!r}")
    opener = _opener(context)
    current, sent = url, dict(headers)
    for hop in range(max_redirects + 1):
        req = urllib.request.Request(current, data=data, headers=sent, method=method)
        try:
            with opener.open(req, timeout=timeout) as answer:
                return Response(
                    answer.status, dict(answer.headers), answer.read(limit), current, hop
                )
        except urllib.error.HTTPError as exc:
            status, answer_headers = exc.code, exc.headers or Message()
            if status not in REDIRECTS:
                body = exc.read(limit) if exc.fp is not None else b""
                return Response(status, dict(answer_headers), body, current, hop)
            exc.close()
        except (urllib.error.URLError, ValueError) as exc:
            # urllib wraps what fails while connecting and sending: nothing answered.
            reason = getattr(exc, "reason", exc)
            raise HttpError(f"{method} {current} failed: {reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            # Raised as it is while waiting for or reading the answer: the
            # request was sent, and may have been carried out.
            raise HttpError(f"{method} {current} failed: {exc}", sent=True) from None
        location = answer_headers.get("Location") or ""
        if not follow_redirects:
            raise Redirected(status, location, "redirects are not followed for this request")
        target = urllib.parse.urljoin(current, location) if location else ""
        if not is_http_url(target):
            raise Redirected(status, location, "only a redirect to an http(s) URL is followed")
        if _origin(target) != _origin(current):
            sent = {k: v for k, v in sent.items() if k.lower() in _KEPT_ACROSS_ORIGINS}
        current = target
    raise Redirected(status, location, f"more than {max_redirects} redirects")
