"""Log masking: ID-like digit runs are hidden, request IDs stay readable so a request can be traced."""

from __future__ import annotations

import logging
import random
import re
import uuid

import pytest

from schemas.masking import MaskingFilter, mask_ids


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("008190123456", "008*******56"),  # a personal ID
        ("legacy 123456789 seen", "legacy 123****89 seen"),  # a legacy ID
        ("a008190123456b", "a008*******56b"),  # glued to letters
        ("/v1/citizens/008090123456?purpose=x", "/v1/citizens/008*******56?purpose=x"),
        (
            "id=008190123456&r=e3249f38-9660-4099-86b7-378300819012",
            "id=008*******56&r=e3249f38-9660-4099-86b7-378300819012",
        ),
        # A uuid4 request ID that happens to hold 11 digits in a row stays whole (CI met this one).
        ("request cda1ad2e9e3249f38966040996b73783: x", "request cda1ad2e9e3249f38966040996b73783: x"),
        ("cda1ad2e-9e32-49f3-8966-040996b73783", "cda1ad2e-9e32-49f3-8966-040996b73783"),
        # 32 hex characters that are not a uuid4 (no version 4 digit), a personal ID inside: masked.
        ("ab008190123456cdef0123456789abcd", "ab008*******56cdef012*****89abcd"),
        # A uuid4 glued to more text is not a token of its own: masked.
        ("xcda1ad2e9e3249f38966040996b73783", "xcda1ad2e9e3249f389******96b73783"),
        ("12345678", "12345678"),  # 8 digits: a count, a date, not an ID
    ],
)
def test_mask_ids(text: str, masked: str) -> None:
    assert mask_ids(text) == masked


def test_no_generated_request_id_is_ever_changed() -> None:
    rng = random.Random(6)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20_000)]
    id_like = [u.hex for u in ids if re.search(r"(?<![0-9])[0-9]{9,12}(?![0-9])", u.hex)]
    assert len(id_like) > 1000, "the sample must hold many request IDs whose digits look like an ID"
    assert [u.hex for u in ids if mask_ids(u.hex) != u.hex] == []
    assert [str(u) for u in ids if mask_ids(str(u)) != str(u)] == []


def test_filter_keeps_a_request_id_and_masks_the_citizen_in_one_line() -> None:
    record = logging.LogRecord(
        "mocks.ndxp", logging.INFO, __file__, 1, "request %s: %s seen",
        ("cda1ad2e9e3249f38966040996b73783", "008190123456"), None,
    )  # fmt: skip
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "request cda1ad2e9e3249f38966040996b73783: 008*******56 seen"
