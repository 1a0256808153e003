"""bench/bench_analyze.py on a small capture: it runs, counts right and checks its baseline."""

from __future__ import annotations

from bench.bench_analyze import capture, run
from bluezoned.exposure.rssi_csv import parse_rssi_csv_bytes


def test_capture_is_seeded_and_parses() -> None:
    data = capture(500, 7, seed=3)
    assert data == capture(500, 7, seed=3)
    table = parse_rssi_csv_bytes(data)
    assert table.t.size == 500
    assert len(set(table.ids.tolist())) <= 7


def test_run_reports_every_contact_and_both_smoothings() -> None:
    result = run(3_000, 30)
    assert result["rows"] == 3_000
    assert result["contacts"] == 30
    assert result["smoothing_units"] > 30
    for key in ("parse_rows_per_s", "engine_contacts_per_s", "smoothing_speedup"):
        assert result[key] > 0


def test_ids_memory_does_not_grow_with_the_longest_id() -> None:
    result = run(2_000, 10)
    # 4 bytes a row plus the labels, against 128 characters x 4 bytes a row
    assert result["ids_bytes_with_a_128_char_id"] < 4 * 2_001 + 200
    assert result["baseline_fixed_width_ids_bytes"] == 2_001 * 128 * 4
