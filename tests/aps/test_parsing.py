from datetime import datetime, timezone

import pytest

from aps_mirror.aps.parsing import format_timestamp, loads_json, parse_timestamp


def test_json_with_utf8_bom_is_read():
    assert loads_json(b'\xef\xbb\xbf{"data": [1]}') == {"data": [1]}
    assert loads_json('\ufeff{"a": "\u00e9"}') == {"a": "\u00e9"}


@pytest.mark.parametrize("text, micro", [
    ("2022-04-26T07:23:03.0000000Z", 0),      # 7 digits, seen on real answers
    ("2022-04-26T07:23:03.1234567Z", 123456),
    ("2022-04-26T07:23:03.123Z", 123000),     # 3 digits, the documented form
    ("2022-04-26T07:23:03Z", 0),
    ("2022-04-26T09:23:03.5+02:00", 500000),
    ("2022-04-26T09:23:03.5+0200", 500000),
])
def test_timestamps_parse_leniently(text, micro):
    parsed = parse_timestamp(text)
    assert parsed == datetime(2022, 4, 26, 7, 23, 3, micro, tzinfo=timezone.utc)


def test_empty_and_bad_timestamps():
    assert parse_timestamp(None) is None
    assert parse_timestamp("") is None
    with pytest.raises(ValueError, match="unrecognised"):
        parse_timestamp("yesterday")


def test_format_round_trips():
    value = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert format_timestamp(value) == "2024-01-02T03:04:05.678Z"
    assert parse_timestamp(format_timestamp(value)) == value
