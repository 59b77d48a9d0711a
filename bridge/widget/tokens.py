"""Buyer tokens: HS256 JWTs signed with the site's `widget_secret`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer
from bridge.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class BuyerClaims:
    site: SiteID
    buyer_id: BuyerID
    name: str | None
    lang: str | None
    expires_at: int


def issue_buyer_token(secret: str, buyer: Buyer, ttl: int) -> tuple[str, int]:
    expires_at = int(time.time()) + ttl
    claims = {"iss": buyer.site, "sub": buyer.buyer_id, "name": buyer.name, "exp": expires_at}
    if buyer.language:
        claims["lang"] = buyer.language
    if buyer.email:
        # The buyer's own address, for the widget to prefill a feedback form's contact.
        claims["email"] = buyer.email
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at


def verify_buyer_token(secret: str, site: SiteID, token: str) -> BuyerClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=site,
            options={"require": ["iss", "sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The buyer token has expired", "M_UNKNOWN_TOKEN") from None
    except jwt.InvalidTokenError as error:
        raise Unauthorized(f"The buyer token is not valid: {error}", "M_UNKNOWN_TOKEN") from None
    name = claims.get("name")
    lang = claims.get("lang")
    return BuyerClaims(
        site=site,
        buyer_id=BuyerID(str(claims["sub"])),
        name=name if isinstance(name, str) else None,
        lang=lang if isinstance(lang, str) else None,
        expires_at=int(claims["exp"]),
    )
