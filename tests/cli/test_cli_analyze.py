"""``bluezoned analyze`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bluezoned.cli.analyze import analyze

T0 = 1_700_000_040


def _csv(tmp_path: Path, with_tx: bool = True) -> Path:
    lines = ["id,t,rssi,tx_power" if with_tx else "id,t,rssi"]
    for s in range(0, 30 * 60, 2):
        lines.append(f"near,{T0 + s},-60" + (",-20" if with_tx else ""))
    for s in range(0, 30 * 60, 2):
        lines.append(f"far,{T0 + s},-104" + (",-20" if with_tx else ""))
    for s in range(0, 4 * 60, 2):
        lines.append(f"brief,{T0 + s},-60" + (",-20" if with_tx else ""))
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_output_one_object_per_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(analyze, [str(_csv(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    records = {r["id"]: r for r in json.loads(result.output)}
    assert sorted(records) == ["brief", "far", "near"]
    near = records["near"]
    for key in (
        "id",
        "start",
        "end",
        "minutes_close",
        "close_contact",
        "min_attenuation",
        "typical_attenuation",
        "weighted_minutes",
    ):
        assert key in near
    assert near["start"] == T0
    assert near["close_contact"] is True
    assert near["min_attenuation"] == 40.0
    assert near["minutes_close"] > 20
    assert records["far"]["close_contact"] is False
    assert records["brief"]["close_contact"] is False
    assert near["distance_band"] == "<1m"
    assert records["far"]["distance_band"] == ">3m"
    bands = near["band_probabilities"]
    assert list(bands) == ["<1m", "1-2m", "2-3m", ">3m"]
    assert sum(bands.values()) == pytest.approx(1.0, abs=1e-3)
    assert bands["<1m"] >= 0.5


def test_options_change_the_decision(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    result = CliRunner().invoke(analyze, [str(path), "--json", "--minutes", "2"])
    records = {r["id"]: r for r in json.loads(result.output)}
    assert records["brief"]["close_contact"] is True
    result = CliRunner().invoke(
        analyze, [str(path), "--json", "--distance", "0.5", "--minutes", "25"]
    )
    records = {r["id"]: r for r in json.loads(result.output)}
    assert records["near"]["minutes_close"] < 30
    # the defaults are the 2 m and 15 min
    default = CliRunner().invoke(analyze, [str(path), "--json"])
    explicit = CliRunner().invoke(
        analyze, [str(path), "--json", "--distance", "2", "--minutes", "15"]
    )
    assert default.output == explicit.output
    other = CliRunner().invoke(analyze, [str(path), "--json", "--distance", "2.5"])
    assert other.output != default.output


def test_default_tx_power_when_column_absent(tmp_path: Path) -> None:
    result = CliRunner().invoke(analyze, [str(_csv(tmp_path, with_tx=False)), "--json"])
    assert result.exit_code == 0
    near = next(r for r in json.loads(result.output) if r["id"] == "near")
    assert near["min_attenuation"] == 34.0  # -26 - (-60)
    assert near["uncalibrated_tx"] is True


def test_human_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(analyze, [str(_csv(tmp_path))])
    assert result.exit_code == 0
    assert "near:" in result.output
    assert "CLOSE CONTACT" in result.output
    assert "far:" in result.output
    assert "no close contact" in result.output


def test_bad_rows_name_each_line_and_print_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,t,rssi\na,1,-60\na,x,-60\nb,2,5000\nc,1e15,-60\n")
    for output in (["--json"], []):
        result = CliRunner().invoke(analyze, [str(path), *output])
        assert result.exit_code == 4
        assert result.stdout == ""
        assert f"{path}:3: t 'x' is not a number" in result.stderr
        assert f"{path}:4: rssi 5000" in result.stderr
        assert f"{path}:5: t 1e15 is not within" in result.stderr


def test_missing_file_and_bad_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(analyze, [str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "cannot read" in result.stderr
    result = CliRunner().invoke(analyze, [str(_csv(tmp_path)), "--distance", "0"])
    assert result.exit_code == 2


def test_stdin_and_empty_file() -> None:
    result = CliRunner().invoke(analyze, ["-", "--json"], input="id,t,rssi\n")
    assert result.exit_code == 0
    assert json.loads(result.output) == []
    result = CliRunner().invoke(analyze, ["-"], input="id,t,rssi\n")
    assert "no sightings" in result.output


def test_help() -> None:
    result = CliRunner().invoke(analyze, ["-h"])
    assert result.exit_code == 0
    assert "--distance" in result.output


def test_oversized_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bluezoned.exposure.rssi_csv as rssi_csv

    path = _csv(tmp_path)
    monkeypatch.setattr(rssi_csv, "MAX_RSSI_CSV_BYTES", path.stat().st_size - 1)
    result = CliRunner().invoke(analyze, [str(path), "--json"])
    assert result.exit_code == 1
    assert f"{path} is larger than" in result.stderr
    assert "RSSI CSV" in result.stderr
    assert result.stdout == ""


def _gaen_csv(tmp_path: Path) -> Path:
    """A duty-cycled capture: a 4-s scan every 4.5 min for 40 min, one id at -75 dBm (about 1 m
    on GAEN's Samsung scale), one at -105 dBm."""
    lines = ["id,t,rssi"]
    for k in range(9):
        start = T0 + 270 * k
        for s in (0, 1, 2, 3):
            lines.append(f"near,{start + s},-75")
            lines.append(f"far,{start + s},-105")
    path = tmp_path / "gaen.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_calibration_applies_its_fit_and_rx_model_offset(tmp_path: Path) -> None:
    path = _gaen_csv(tmp_path)
    scale = ["--tx-power", "-24", "--rx-correction", "5"]  # the calibration's GAEN scale
    args = [str(path), "--json", "--calibration", "dp3t-exp34-2m-15min", *scale]
    result = CliRunner().invoke(analyze, args)
    assert result.exit_code == 0, result.output
    fitted = {r["id"]: r for r in json.loads(result.output)}
    assert fitted["near"]["scanning"] == "sparse"
    assert fitted["near"]["close_contact"] is True
    assert fitted["far"]["close_contact"] is False
    default = {
        r["id"]: r
        for r in json.loads(CliRunner().invoke(analyze, [str(path), "--json", *scale]).output)
    }
    assert fitted["near"]["minutes_close"] != default["near"]["minutes_close"]
    # The calibration decides on its own estimate, reported beside the duration estimate.
    for r in fitted.values():
        assert r["decision_threshold"] == 18.0
        assert r["close_contact"] is (r["decision_minutes"] >= 18.0)
    for r in default.values():
        assert r["decision_minutes"] == r["minutes_close"]
    # SM-A908B receives 6.39 dB weaker than the fleet (a positive attenuation offset): the same
    # RSSI then means closer, so more minutes within 2 m.
    result = CliRunner().invoke(analyze, [*args, "--rx-model", "SM-A908B"])
    offset = {r["id"]: r for r in json.loads(result.output)}
    assert offset["far"]["minutes_close"] > fitted["far"]["minutes_close"]
    human = CliRunner().invoke(analyze, args[:1] + args[2:]).output
    assert "near: " in human
    assert "CLOSE CONTACT" in human
    assert ">= 18 min" in human


def test_calibration_refuses_contradicting_options(tmp_path: Path) -> None:
    path = str(_gaen_csv(tmp_path))
    calibrated = ["--calibration", "dp3t-exp34-2m-15min"]
    result = CliRunner().invoke(analyze, [path, *calibrated, "--distance", "1.5"])
    assert result.exit_code == 2
    assert "fitted for --distance 2.0" in result.output
    result = CliRunner().invoke(analyze, [path, *calibrated, "--scanning", "dense"])
    assert result.exit_code == 2
    assert "fitted for --scanning sparse" in result.output
    result = CliRunner().invoke(analyze, [path, *calibrated, "--minutes", "15"])
    assert result.exit_code == 0, result.output  # the same value is no contradiction
    result = CliRunner().invoke(analyze, [path, "--rx-model", "SM-A908B"])
    assert result.exit_code == 2
    assert "--rx-model needs --calibration" in result.output
    result = CliRunner().invoke(analyze, [path, "--calibration", "nope"])
    assert result.exit_code == 2


def test_bucket_edges_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    # 60 dB for ten minutes: CWA v2's first bucket (< 63), GAEN-style near (55-63)
    path.write_text("id,t,rssi,tx_power\n" + "".join(f"a,{T0 + s},-80,-20\n" for s in range(600)))

    def contact(*options: str) -> dict[str, object]:
        result = CliRunner().invoke(analyze, [str(path), "--json", *options])
        assert result.exit_code == 0, result.output
        (record,) = json.loads(result.stdout)
        assert isinstance(record, dict)
        return record

    cwa = contact()
    assert cwa["bucket_seconds"] == [600.0, 0.0, 0.0, 0.0]
    assert cwa["weighted_minutes"] == pytest.approx(10 * 0.8)
    gaen = contact("--buckets", "gaen")
    assert gaen["bucket_seconds"] == [0.0, 600.0, 0.0, 0.0]
    assert gaen["weighted_minutes"] == pytest.approx(10.0)
    own = contact("--buckets", "58,65,80", "--bucket-weights", "2,0.5,0,0")
    assert own["bucket_seconds"] == [0.0, 600.0, 0.0, 0.0]
    assert own["weighted_minutes"] == pytest.approx(5.0)
    third = contact("--buckets", "50,55,65", "--bucket-weights", "2,0.5,0.25,0.125")
    assert third["bucket_seconds"] == [0.0, 0.0, 600.0, 0.0]
    assert third["weighted_minutes"] == pytest.approx(2.5)
    last = contact("--buckets", "40,50,55", "--bucket-weights", "2,0.5,0.25,0.125")
    assert last["weighted_minutes"] == pytest.approx(1.25)
    for options, message in (
        (["--buckets", "70,60,50"], "must increase"),
        (["--buckets", "60,60,70"], "must increase"),
        (["--buckets", "50,60,60"], "must increase"),
        (["--buckets", "near"], "3 comma-separated numbers"),
        (["--bucket-weights", "1,1"], "4 comma-separated numbers"),
        (["--bucket-weights", "1,1,1,-1"], "within 0..10"),
    ):
        result = CliRunner().invoke(analyze, [str(path), *options])
        assert result.exit_code == 2
        assert message in result.stderr


def test_too_many_distinct_ids_are_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,t,rssi\n" + "".join(f"row{i},{T0 + i},-60\n" for i in range(30)))
    refused = CliRunner().invoke(analyze, [str(path), "--max-ids", "20"])
    assert refused.exit_code == 1
    assert f"{path}:22: more than 20 distinct ids" in refused.stderr
    assert refused.stdout == ""
    allowed = CliRunner().invoke(analyze, [str(path), "--max-ids", "30", "--json"])
    assert allowed.exit_code == 0, allowed.output
    assert len(json.loads(allowed.stdout)) == 30
