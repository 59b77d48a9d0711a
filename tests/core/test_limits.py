"""Per-buyer limits: a token bucket on a fake clock, and uploads in flight at once."""

from __future__ import annotations

import pytest

from bridge.core.limits import Rate, RateLimiter, UploadSlots
from bridge.errors import RateLimited, TooManyUploads
from tests.core.fakes import FakeClock


def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter({"message": Rate(burst=3, per_second=1.0)}, clock=clock)


def test_a_burst_passes_then_the_next_is_refused_with_the_wait() -> None:
    limits = limiter(FakeClock())
    for _ in range(3):
        limits.take("anna", "message")
    with pytest.raises(RateLimited) as refused:
        limits.take("anna", "message")
    assert refused.value.retry_after_ms == 1001
    assert refused.value.status == 429
    assert refused.value.to_json()["errcode"] == "M_LIMIT_EXCEEDED"


def test_the_bucket_refills_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(3):
        limits.take("anna", "message")
    clock.advance(1.0)
    limits.take("anna", "message")  # one token back
    with pytest.raises(RateLimited):
        limits.take("anna", "message")
    clock.advance(3600)
    for _ in range(3):  # never more than the burst, however long the quiet
        limits.take("anna", "message")
    with pytest.raises(RateLimited):
        limits.take("anna", "message")


def test_the_wait_shrinks_as_time_passes() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(3):
        limits.take("anna", "message")
    clock.advance(0.75)
    with pytest.raises(RateLimited) as refused:
        limits.take("anna", "message")
    assert refused.value.retry_after_ms == 251


def test_buyers_and_kinds_have_their_own_buckets() -> None:
    limits = limiter(FakeClock())
    for _ in range(3):
        limits.take("anna", "message")
    limits.take("boris", "message")
    limits.take("anna", "typing")  # a kind left out keeps its default rate


def test_per_minute_spreads_the_count_over_a_minute() -> None:
    clock = FakeClock()
    limits = RateLimiter({"download": Rate.per_minute(2)}, clock=clock)
    limits.take("anna", "download")
    limits.take("anna", "download")
    clock.advance(29)
    with pytest.raises(RateLimited):
        limits.take("anna", "download")
    clock.advance(1)
    limits.take("anna", "download")


def test_uploads_in_flight_are_capped_per_buyer() -> None:
    slots = UploadSlots(2)
    with slots.hold("anna"), slots.hold("anna"):
        with pytest.raises(TooManyUploads) as refused, slots.hold("anna"):
            pass
        assert str(refused.value) == (
            "You are already sending 2 files; send this one when an upload has finished"
        )
        assert refused.value.status == 429
        with slots.hold("boris"):
            pass
    with slots.hold("anna"), slots.hold("anna"):
        pass  # both slots are free again


def test_a_failed_upload_gives_its_slot_back() -> None:
    slots = UploadSlots(1)
    with pytest.raises(ValueError), slots.hold("anna"):
        raise ValueError("the body was cut")
    with (
        slots.hold("anna"),
        pytest.raises(TooManyUploads, match="already sending a file"),
        slots.hold("anna"),
    ):
        pass
