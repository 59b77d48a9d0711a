"""Product images for room avatars: fetched from the marketplace's public web server, with a
size cap and one deadline, never from the bridge's own network; checked by bytes and shape.

`context.image_url` is written by whoever opens a conversation, so the fetch is hostile by
default: http(s) only, no credentials, every address the host resolves to checked before
the connection is made to it, and each of at most REDIRECTS redirects checked again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bridge.config import MediaConfig
from bridge.errors import BadRequest
from bridge.media.cleaning import CheckedImage

__all__ = ["REDIRECTS", "Image", "ImageChecker", "ProductImages", "is_public_address"]

logger = logging.getLogger(__name__)

REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCHEMES = frozenset({"http", "https"})
_CHUNK = 64 * 1024
# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits: the gateway would connect
# to that one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    filename: str


class ImageChecker(Protocol):
    async def check_image(self, data: bytes) -> CheckedImage: ...


def is_public_address(address: IPAddress) -> bool:
    """Whether `address` is on the public internet: not loopback, private, link-local,
    multicast, reserved or unspecified, and not an IPv6 form of an IPv4 address that is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class _Refused(Exception):
    """A product image the bridge won't fetch or keep; the message says why, for the log."""


class _AddressRefused(OSError):
    """Raised inside aiohttp's connector, which turns an OSError from its resolver into a
    ClientConnectorDNSError: no connection is made."""


class _CheckedResolver(AbstractResolver):
    """Name resolution that answers only addresses the bridge may fetch from, so that the
    connection goes to an address that was checked: a second DNS answer can't differ."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for address_family, _, proto, _, sockaddr in found:
            text = str(sockaddr[0])
            if address_family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3]:
                text = f"{text.split('%', 1)[0]}%{sockaddr[3]}"  # a link-local address's scope
            if not self._allow_private and not is_public_address(ipaddress.ip_address(text)):
                refused.append(text)
                continue
            allowed.append(
                ResolveResult(
                    hostname=host,
                    host=text,
                    port=int(sockaddr[1]),
                    family=address_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not allowed:
            raise _AddressRefused(
                f"{host} resolves only to addresses that are not public: {', '.join(refused)}"
            )
        return allowed

    async def close(self) -> None:
        pass


def _looks_like_an_address(host: str) -> bool:
    # aiohttp's own test for a host it connects to without asking the resolver.
    return ":" in host or host.replace(".", "").isdigit()


class ProductImages:
    def __init__(self, images: ImageChecker, media: MediaConfig) -> None:
        self._images = images
        self._allow_private = media.allow_private_fetch
        self._max_bytes = media.fetch_max_bytes
        self._deadline = media.fetch_timeout_seconds

    async def fetch(self, url: str) -> Image | None:
        """The image at `url`, or None (logged) when it may not be fetched, is missing, too
        big, too slow, not an image or not one the bridge decodes."""
        shown = _without_credentials(url)
        try:
            async with asyncio.timeout(self._deadline):
                data = await self._download(URL(url))
        except _Refused as refusal:
            logger.info("Product image %s refused: %s", shown, refusal)
            return None
        except TimeoutError:
            logger.info("Product image %s not fetched within %g s", shown, self._deadline)
            return None
        except (aiohttp.ClientError, ValueError) as error:
            logger.info("Product image %s not fetched: %s: %s", shown, type(error).__name__, error)
            return None
        try:
            checked = await self._images.check_image(data)
        except BadRequest as refusal:
            logger.info("Product image %s refused: %s", shown, refusal.error)
            return None
        # From the path alone: the rest of a URL may hold a user and password.
        filename = URL(url).name[:100] or "product"
        return Image(data, checked.content_type, filename)

    async def _download(self, url: URL) -> bytes:
        # A session of its own: its connector asks the checking resolver, keeps no cookies
        # between hops and hands the body over as sent (a compressed body could inflate far
        # past the cap in one chunk, and an image gains nothing from compression).
        connector = aiohttp.TCPConnector(
            resolver=_CheckedResolver(self._allow_private), use_dns_cache=False
        )
        async with aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers={hdrs.ACCEPT: "image/*", hdrs.ACCEPT_ENCODING: "identity"},
        ) as session:
            for _ in range(REDIRECTS + 1):
                url = self._checked(url)
                try:
                    async with session.get(url, allow_redirects=False) as response:
                        if response.status in _REDIRECT_STATUSES:
                            url = _redirected(url, response)
                            continue
                        if response.status != 200:
                            raise _Refused(f"HTTP {response.status}")
                        return await self._body(response)
                except aiohttp.ClientConnectorError as error:
                    if isinstance(error.os_error, _AddressRefused):
                        raise _Refused(str(error.os_error)) from None
                    raise
        raise _Refused(f"more than {REDIRECTS} redirects")

    def _checked(self, url: URL) -> URL:
        """`url` as it may be fetched: http(s), without user or password (aiohttp would send
        them as Basic auth to whoever the URL names), at an address that may be reached."""
        if url.scheme not in _SCHEMES or not url.host:
            raise _Refused(f"{url.scheme or 'a relative'} URL; only http(s) is fetched")
        url = url.with_user(None).with_fragment(None)
        host = url.host
        if self._allow_private or host is None or not _looks_like_an_address(host):
            return url  # a name: the resolver checks what it resolves to
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise _Refused(f"{host} is not an address this bridge connects to") from None
        if not is_public_address(address):
            raise _Refused(f"{host} is not a public address")
        return url

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, however it arrives, refused as soon as it passes the cap."""
        encoding = response.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
        if encoding != "identity":
            raise _Refused(f"compressed ({encoding})")
        if response.content_length is not None and response.content_length > self._max_bytes:
            raise _Refused(f"{response.content_length} bytes, over {self._max_bytes}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                raise _Refused(f"over {self._max_bytes} bytes")
        return bytes(body)


def _without_credentials(url: str) -> str:
    """`url` fit for the log: a password in it stays out."""
    try:
        return str(URL(url).with_user(None))
    except ValueError:
        return repr(url[:200])


def _redirected(url: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get(hdrs.LOCATION)
    if not location:
        raise _Refused(f"HTTP {response.status} without a Location")
    try:
        return url.join(URL(location))
    except ValueError:
        raise _Refused(f"a redirect to {location!r}, which is not a URL") from None
