"""The CSV capture parser: good files, header variants, every kind of bad line."""

from __future__ import annotations

import pytest

import bluezoned.store.capture as capture_module
from bluezoned import csvlines
from bluezoned.const import RETENTION_DAYS, SECONDS_PER_DAY
from bluezoned.errors import BadRecords, InvalidInput
from bluezoned.models import Sighting
from bluezoned.store import Capture, parse_capture, parse_capture_bytes

NOW = 1_795_953_600.0  # 2026-11-29T12:00:00Z
RPI = "00112233445566778899aabbccddeeff"
AEM = "0a0b0c0d"
ROW = f"{NOW - 60:.1f},{RPI},{AEM},-63"


def parse(text: str, now: float = NOW) -> Capture:
    return parse_capture(text.splitlines(keepends=True), now=now, source="cap.csv")


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(BadRecords) as excinfo:
        parse(text)
    assert excinfo.value.source == "cap.csv"
    assert excinfo.value.total_bad == len(excinfo.value.problems)
    return excinfo.value.problems


def test_good_file() -> None:
    capture = parse(f"t,rpi,aem,rssi\n{ROW}\n{NOW - 30},{RPI.upper()},{AEM},126\n")
    rpi, aem = bytes.fromhex(RPI), bytes.fromhex(AEM)
    assert capture.sightings == [
        Sighting(NOW - 60, rpi, aem, -63),
        Sighting(NOW - 30, rpi, aem, 126),
    ]
    assert (capture.rows, capture.skipped_old) == (2, 0)


@pytest.mark.parametrize(
    ("text", "rssi"), [("-127", -127), ("-0127", -127), ("+126", 126), ("0", 0)]
)
def test_rssi_limits_are_read_in_any_integer_spelling(text: str, rssi: int) -> None:
    capture = parse(f"t,rpi,aem,rssi\n{NOW - 60},{RPI},{AEM},{text}\n")
    assert [s.rssi for s in capture.sightings] == [rssi]


@pytest.mark.parametrize(
    "text",
    [
        f"rssi,aem,t,rpi\n-63,{AEM},{NOW - 60:.1f},{RPI}\n",
        f" T , RPI,Aem ,rssi\n{ROW}\n",
        f"\ufefft,rpi,aem,rssi\r\n{ROW}\r\n",
        f"\n\nt,rpi,aem,rssi\n\n{ROW}\n   \n",
        f"t,rpi,aem,rssi\n{ROW.replace(',', ' , ')}",
    ],
    ids=["reordered", "case-and-spaces", "bom-crlf", "blank-lines", "spaced-fields"],
)
def test_header_and_layout_variants(text: str) -> None:
    assert parse(text).sightings == [
        Sighting(NOW - 60, bytes.fromhex(RPI), bytes.fromhex(AEM), -63)
    ]


def test_header_only_is_an_empty_capture() -> None:
    assert parse("t,rpi,aem,rssi\n") == Capture([], 0)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty file"),
        ("\n \n", 1, "empty file"),
        (f"{ROW}\n", 1, "no header"),
        (f"t,rpi,aem\n{ROW}\n", 1, "missing column(s) rssi"),
        (f"t,rpi,aem,rssi,channel\n{ROW}\n", 1, "unknown column(s) channel"),
        (f"t,rpi,rpi,aem,rssi\n{ROW}\n", 1, "duplicate column(s) rpi"),
        (f"\nt;rpi;aem;rssi\n{ROW}\n", 2, "unknown column(s) t;rpi;aem;rssi"),
    ],
)
def test_bad_headers(text: str, line: int, message: str) -> None:
    [(number, text_of_problem)] = problems(text)
    assert number == line
    assert message in text_of_problem


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"abc,{RPI},{AEM},-60", "t 'abc' is not a number"),
        (f"nan,{RPI},{AEM},-60", "t 'nan' is not a number"),
        (f"inf,{RPI},{AEM},-60", "t 'inf' is not a number"),
        (f"1e999,{RPI},{AEM},-60", "not finite"),
        (f"-5,{RPI},{AEM},-60", "before 1970"),
        (f"1_795_953_000,{RPI},{AEM},-60", "not a number"),
        (f"{NOW + 301},{RPI},{AEM},-60", "more than 300 s after now"),
        (f"{NOW},{RPI[:-2]},{AEM},-60", "rpi has 30 hex digits, expected 32 (16 bytes)"),
        (f"{NOW},{RPI}00,{AEM},-60", "rpi has 34 hex digits"),
        (f"{NOW},{RPI[:-1]}g,{AEM},-60", "is not hexadecimal"),
        (f"{NOW},{RPI[:16]} {RPI[16:]},{AEM},-60", "is not hexadecimal"),
        (f"{NOW},{RPI},{AEM}0a,-60", "aem has 10 hex digits, expected 8 (4 bytes)"),
        (f"{NOW},{RPI},,-60", "aem has 0 hex digits"),
        (f"{NOW},{RPI},{AEM},-60.5", "rssi '-60.5' is not an integer"),
        (f"{NOW},{RPI},{AEM},-128", "rssi -128 is outside -127..126 dBm"),
        (f"{NOW},{RPI},{AEM},127", "outside"),
        (f"{NOW},{RPI},{AEM}", "expected 4 fields, got 3"),
        (f"{NOW},{RPI},{AEM},-60,1", "expected 4 fields, got 5"),
        ("x" * 2000, "longer than 1024 characters"),
    ],
)
def test_each_kind_of_bad_row_names_its_line(row: str, message: str) -> None:
    [(line, text)] = problems(f"t,rpi,aem,rssi\n{ROW}\n\n{row}\n{ROW}\n")
    assert line == 4
    assert message in text


def test_every_problem_of_a_line_and_every_bad_line_is_reported() -> None:
    text = f"t,rpi,aem,rssi\n{ROW}\nx,{RPI[:4]},{AEM},999\n{ROW}\n{ROW},extra\n"
    found = problems(text)
    assert [line for line, _ in found] == [3, 5]
    assert found[0][1].count(";") == 2  # t, rpi and rssi are all wrong on line 3


def test_problem_list_is_bounded_but_the_count_is_not() -> None:
    bad = csvlines.MAX_RECORDED_PROBLEMS + 500
    with pytest.raises(BadRecords) as excinfo:
        parse("t,rpi,aem,rssi\n" + "bad\n" * bad)
    assert excinfo.value.total_bad == bad
    assert len(excinfo.value.problems) == csvlines.MAX_RECORDED_PROBLEMS


def test_rows_older_than_retention_are_skipped_and_counted() -> None:
    retention = RETENTION_DAYS * SECONDS_PER_DAY
    text = (
        "t,rpi,aem,rssi\n"
        f"{NOW - retention - 1},{RPI},{AEM},-60\n"
        f"{NOW - retention},{RPI},{AEM},-61\n"
        f"{NOW + 300},{RPI},{AEM},-62\n"
    )
    capture = parse(text)
    assert [s.rssi for s in capture.sightings] == [-61, -62]
    assert (capture.skipped_old, capture.rows) == (1, 3)
    assert parse(text, now=NOW + 10 * SECONDS_PER_DAY).skipped_old == 2


def test_an_old_row_with_a_bad_field_is_still_an_error() -> None:
    [(line, _)] = problems(f"t,rpi,aem,rssi\n0,{RPI},{AEM},-300\n")
    assert line == 2


def test_bytes_with_nul_or_invalid_utf8_name_their_lines() -> None:
    data = f"t,rpi,aem,rssi\n{ROW}\n".encode() + b"1,\x00\x00\n" + f"{ROW}\n".encode()
    data += b"caf\xe9,1,2,3\n"
    with pytest.raises(BadRecords) as excinfo:
        parse_capture_bytes(data, now=NOW, source="cap.csv")
    assert excinfo.value.problems == [
        (3, "NUL byte at column 3 (is this a binary file?)"),
        (5, "not UTF-8 text (byte 0xe9 at column 4)"),
    ]


def test_binary_header_is_reported_once() -> None:
    with pytest.raises(BadRecords) as excinfo:
        parse_capture_bytes(b"\x1f\x8b\x08\x00\xff\xfe\n" + f"{ROW}\n".encode(), now=NOW)
    assert [line for line, _ in excinfo.value.problems] == [1]


def test_good_bytes_parse_like_text() -> None:
    text = f"t,rpi,aem,rssi\r\n{ROW}\r\n"
    assert parse_capture_bytes(text.encode(), now=NOW) == parse(text)


def test_oversized_capture_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "MAX_CAPTURE_BYTES", 64)
    with pytest.raises(InvalidInput, match="larger than the 64 bytes"):
        parse_capture_bytes(f"t,rpi,aem,rssi\n{ROW}\n".encode(), now=NOW)
