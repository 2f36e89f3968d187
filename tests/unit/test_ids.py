"""Time-ordered ids: RFC 9562 version 7 UUIDs whose leading bits are the time of writing."""

from __future__ import annotations

import time
import uuid

from giftcards import ids


def test_a_time_ordered_id_is_a_version_7_uuid_carrying_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(ids.time_ordered())
    after = time.time_ns() // 1_000_000

    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_written_in_later_milliseconds_sort_later() -> None:
    first = ids.time_ordered()
    time.sleep(0.002)
    second = ids.time_ordered()

    assert first < second  # as text, and so as PostgreSQL's uuid ordering (bytewise)
    assert uuid.UUID(first).bytes < uuid.UUID(second).bytes


def test_ids_of_the_same_millisecond_differ_in_their_random_bits() -> None:
    many = [ids.time_ordered() for _ in range(10_000)]

    assert len(set(many)) == len(many)
    assert len({uuid.UUID(v).int & ((1 << 62) - 1) for v in many}) == len(many)
