"""The one exception root of the bridge; every error a client sees comes from here.

BridgeError                     status 500, BAZAAR_INTERNAL
├── BadRequest                  400, M_BAD_JSON / M_INVALID_PARAM / M_MISSING_PARAM
│   ├── TooLarge                413, M_TOO_LARGE
│   └── BodyTimeout             408, BAZAAR_BODY_TIMEOUT
├── Unauthorized                401, M_MISSING_TOKEN / M_UNKNOWN_TOKEN
├── Forbidden                   403, M_FORBIDDEN
├── NotFound                    404, M_NOT_FOUND / BAZAAR_UNKNOWN_*
├── Conflict                    409, BAZAAR_CONFLICT
├── RateLimited                 429, M_LIMIT_EXCEEDED (with retry_after_ms)
├── TooManyUploads              429, BAZAAR_TOO_MANY_UPLOADS (when one upload ends)
└── Unavailable                 503, BAZAAR_UNAVAILABLE (try again later)
"""

from __future__ import annotations

from typing import Any, ClassVar


class BridgeError(Exception):
    status: ClassVar[int] = 500
    default_errcode: ClassVar[str] = "BAZAAR_INTERNAL"

    def __init__(self, error: str, errcode: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.errcode = errcode or self.default_errcode

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.error}


class BadRequest(BridgeError):
    status = 400
    default_errcode = "M_INVALID_PARAM"


class TooLarge(BadRequest):
    status = 413
    default_errcode = "M_TOO_LARGE"


class BodyTimeout(BadRequest):
    status = 408
    default_errcode = "BAZAAR_BODY_TIMEOUT"


class Unauthorized(BridgeError):
    status = 401
    default_errcode = "M_UNKNOWN_TOKEN"


class Forbidden(BridgeError):
    status = 403
    default_errcode = "M_FORBIDDEN"


class NotFound(BridgeError):
    status = 404
    default_errcode = "M_NOT_FOUND"


class Conflict(BridgeError):
    status = 409
    default_errcode = "BAZAAR_CONFLICT"


class Unavailable(BridgeError):
    status = 503
    default_errcode = "BAZAAR_UNAVAILABLE"


class RateLimited(BridgeError):
    status = 429
    default_errcode = "M_LIMIT_EXCEEDED"

    def __init__(self, error: str, retry_after_ms: int) -> None:
        super().__init__(error)
        self.retry_after_ms = retry_after_ms

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "retry_after_ms": self.retry_after_ms}


class TooManyUploads(BridgeError):
    """The buyer already has as many uploads in flight as the bridge takes at once."""

    status = 429
    default_errcode = "BAZAAR_TOO_MANY_UPLOADS"
