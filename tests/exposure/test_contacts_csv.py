"""The RSSI CSV parser of ``bluezoned analyze``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bluezoned.errors import BadRecords, InvalidInput
from bluezoned.exposure import rssi_csv
from bluezoned.exposure.rssi_csv import parse_rssi_csv, parse_rssi_csv_bytes


def test_parses_columns_in_any_order_with_optional_tx_power() -> None:
    table = parse_rssi_csv(
        ["\ufeffRSSI, t ,id,tx_power\n", "-60,100.5,a,-20\n", "\n", "-70,101,b,\n"]
    )
    assert table.ids.tolist() == ["a", "b"]
    assert table.t.tolist() == [100.5, 101.0]
    assert table.rssi.tolist() == [-60.0, -70.0]
    assert table.tx_power[0] == -20.0
    assert math.isnan(table.tx_power[1])
    no_tx = parse_rssi_csv(["id,t,rssi", "x,1,-50"])
    assert math.isnan(no_tx.tx_power[0])


def test_every_bad_line_is_named() -> None:
    lines = [
        "id,t,rssi,tx_power",
        "a,1,-60,-20",
        "a,xx,-60,-20",
        ",2,-60,",
        "a,3,-200,",
        "a,4,-60,99",
        "a,5,-60",
        "a,-1,nan,",
        "a,1e15,-60,",
        '"a,b",1,-60,',
    ]
    with pytest.raises(BadRecords) as err:
        parse_rssi_csv(lines, source="f.csv")
    problems = dict(err.value.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "t 'xx' is not a number" in problems[3]
    assert "id is empty" in problems[4]
    assert "rssi -200" in problems[5]
    assert "tx_power 99" in problems[6]
    assert "expected 4 fields, got 3" in problems[7]
    assert "t -1" in problems[8]
    assert "rssi 'nan'" in problems[8]
    assert "t 1e15 is not within 0..2.53402e+11 unix seconds" in problems[9]
    assert "expected 4 fields, got 5 (fields cannot be quoted)" in problems[10]
    assert err.value.total_bad == 8
    assert err.value.source == "f.csv"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,t", "missing column(s) rssi"),
        ("id,t,rssi,foo", "unknown column(s) foo"),
        ("id,t,t,rssi", "duplicate column(s) t"),
        ("a,1,-60", "unknown column(s)"),
    ],
)
def test_bad_header(header: str, message: str) -> None:
    with pytest.raises(BadRecords) as err:
        parse_rssi_csv([header, "a,1,-60"])
    assert err.value.problems[0][0] == 1
    assert message in err.value.problems[0][1]


def test_empty_file_and_bytes_problems() -> None:
    with pytest.raises(BadRecords, match="1 bad row"):
        parse_rssi_csv([])
    with pytest.raises(BadRecords) as err:
        parse_rssi_csv_bytes(b"id,t,rssi\na,1,-60\nb,\xff,-60\nc,1\x00,-60\n")
    assert [line for line, _ in err.value.problems] == [3, 4]
    assert parse_rssi_csv_bytes(b"id,t,rssi\r\na,1,-60\r\n").rows == 1


def test_size_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rssi_csv, "MAX_RSSI_CSV_BYTES", 10)
    with pytest.raises(InvalidInput):
        parse_rssi_csv_bytes(b"id,t,rssi\na,1,-60\n")


def test_ids_are_kept_once_each_whatever_their_length() -> None:
    long_id = "x" * 128
    table = parse_rssi_csv(["id,t,rssi", "a,1,-60", f"{long_id},2,-61", "a,3,-62"])
    assert table.labels == ("a", long_id)
    assert table.codes.tolist() == [0, 1, 0]
    assert table.codes.dtype == np.int32  # 4 bytes a row, not 128 characters x 4 bytes
    assert table.ids.tolist() == ["a", long_id, "a"]


def test_distinct_ids_are_bounded_at_the_line_that_passes_the_bound() -> None:
    lines = ["id,t,rssi", *(f"u{i % 5},{i},-60" for i in range(50))]
    assert len(parse_rssi_csv(lines, max_ids=5).labels) == 5  # repeats are free
    with pytest.raises(InvalidInput, match=r"f.csv:7: more than 5 distinct ids"):
        parse_rssi_csv(
            ["id,t,rssi", *(f"u{i},{i},-60" for i in range(50))], source="f.csv", max_ids=5
        )
    data = ("id,t,rssi\n" + "".join(f"u{i},{i},-60\n" for i in range(50))).encode()
    with pytest.raises(InvalidInput, match="unique per row"):
        parse_rssi_csv_bytes(data, max_ids=49)
