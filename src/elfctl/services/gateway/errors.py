"""Errors as the OpenAI API shapes them, so the official SDK raises its own exception types:
400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
413/422 APIStatusError, 429 RateLimitError, >=500 InternalServerError.

Body: `{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

import json

# OpenAI's `type` for each status the gateway sends.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error",
          413: "invalid_request_error", 429: "rate_limit_error"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str | None = None, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        from elfctl.redact import scrub  # a provider's message may echo what it was sent

        return json.dumps({"error": {"message": scrub(self.message), "type": self.type, "code": self.code,
                                     "param": self.param}}).encode()


def unauthorized() -> ApiError:
    """The one answer for a missing, malformed, unknown, revoked or expired key: it says nothing
    about whether a team or a key exists."""
    return ApiError(401, "invalid API key: pass a live gateway key as `Authorization: Bearer <key>`",
                    code="invalid_api_key")


def _seconds_until(at) -> int:
    from elfctl.domain.clock import now

    return max(1, int((at - now()).total_seconds() + 0.999)) if at is not None else 60


def from_elf(exc) -> ApiError:
    """The HTTP answer for an ElfError out of the call path.

    A budget refusal is 429 `budget_exceeded` with Retry-After the seconds to the window's reset. A
    call every model of the chain failed is judged by the last failure (what the client would
    have met with no fallback): upstream rate limit 429 (with the provider's Retry-After), timeout
    504, open circuits 503, anything else 502. A provider's own 400 passes through. Input errors are
    400; an unreachable store 503."""
    code = getattr(exc, "code", "failed")
    if code == "budget_exceeded":
        wait = _seconds_until(getattr(exc, "resets_at", None))
        return ApiError(429, exc.message, type="insufficient_quota", code="budget_exceeded",
                        headers={"retry-after": str(wait)})
    if code == "circuit_open":
        return ApiError(503, exc.message, code="circuit_open")
    if code == "llm_failed":
        causes = list(getattr(exc, "causes", ()) or [exc])
        last = causes[-1]
        kind = getattr(last, "kind", "")
        if getattr(last, "code", "") == "circuit_open":
            return ApiError(503, exc.message, code="circuit_open")
        if kind == "bad_request":  # the provider's own validation answer, passed through
            status = getattr(last, "status", None)
            status = status if isinstance(status, int) and 400 <= status < 500 else 400
            err = (getattr(last, "body", None) or {}).get("error")
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                code_ = err.get("code")
                return ApiError(status, err["message"], type=err.get("type") if isinstance(err.get("type"), str)
                                else None, code=code_ if isinstance(code_, str) else "provider_bad_request",
                                param=err.get("param") if isinstance(err.get("param"), str) else None)
            return ApiError(status, last.message, code="provider_bad_request")
        if kind == "rate_limit":
            after = getattr(last, "retry_after", None)
            return ApiError(429, exc.message, code="rate_limited",
                            headers={"retry-after": str(max(1, int(after + 0.999)))} if after else {})
        if kind == "timeout":
            return ApiError(504, exc.message, type="api_error", code="provider_timeout")
        return ApiError(502, exc.message, type="api_error", code="provider_error")
    if getattr(exc, "exit_code", 1) == 2:
        return ApiError(400, exc.message, code=code)
    if getattr(exc, "exit_code", 1) == 3:
        return ApiError(503, exc.message, type="api_error", code=code)
    return ApiError(500, exc.message, type="api_error", code=code)
