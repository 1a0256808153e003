"""Calibrations shipped as data, per-unit features and the optional unit classifier."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from bluezoned.errors import InvalidInput
from bluezoned.exposure.contacts import (
    UNIT_FEATURES,
    EngineConfig,
    PathLossModel,
    UnitClassifier,
    analyze_contact,
    attenuation,
    calibrated_config,
    observation_units,
    unit_features,
)
from bluezoned.exposure.presets import (
    DP3T_EXP05_2M_15MIN,
    DP3T_EXP34_2M_15MIN,
    PROXIMITY_CALIBRATIONS,
    ProximityCalibration,
)

T0 = 1_700_000_040.0


def _cal(**kw: object) -> ProximityCalibration:
    base = ProximityCalibration(
        name="test",
        regime="dense",
        distance_m=2.0,
        minutes=15.0,
        att_at_1m=50.0,
        decision_att_at_1m=55.0,
        decision_minutes=10.0,
        rx_model_offsets=(("RX-A", 2.0),),
        tx_model_offsets=(("TX-B", -5.0),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_calibration_offsets_add_and_unknown_models_get_zero() -> None:
    cal = _cal()
    assert cal.offset("RX-A", "TX-B") == -3.0
    assert cal.offset("RX-A", None) == 2.0
    assert cal.offset("other", "other") == 0.0
    assert cal.offset() == 0.0


def test_calibrated_config_applies_every_fitted_number() -> None:
    base = EngineConfig(rx_correction=1.0)
    cfg = calibrated_config(_cal(), base, rx_model="RX-A", tx_model="TX-B")
    assert cfg.rx_correction == pytest.approx(1.0 - 3.0)
    assert cfg.model.att_at_1m == 50.0
    assert cfg.decision_model is not None
    assert cfg.decision_model.att_at_1m == 55.0
    assert cfg.decision_minutes == 10.0
    assert (cfg.distance_m, cfg.minutes, cfg.regime) == (2.0, 15.0, "dense")
    # exponent and (unless fitted) sigma stay those of the base model
    assert cfg.model.exponent == base.model.exponent
    assert cfg.model.sigma_db == base.model.sigma_db
    tight = calibrated_config(_cal(sigma_db=6.0), base)
    assert tight.model.sigma_db == 6.0
    assert tight.decision_model is not None
    assert tight.decision_model.sigma_db == 6.0
    with pytest.raises(InvalidInput):
        calibrated_config(_cal(regime="bogus"), base)


def test_a_model_offset_shifts_attenuation_like_the_correction() -> None:
    t = T0 + np.arange(0.0, 20 * 60.0, 1.0)
    rssi = np.full(t.shape, -75.0)
    tx = np.full(t.shape, -20.0)
    plain = analyze_contact(t, rssi, tx, config=calibrated_config(_cal(), EngineConfig()))
    hot = analyze_contact(
        t, rssi, tx, config=calibrated_config(_cal(), EngineConfig(), tx_model="TX-B")
    )
    # offset −5 dB: this model reads 5 dB less attenuated than typical, so 5 dB are added back
    assert hot.min_att == plain.min_att + 5.0
    assert hot.minutes_close < plain.minutes_close


def test_decision_threshold_of_the_calibration_is_used() -> None:
    t = T0 + np.arange(0.0, 12 * 60.0, 1.0)
    rssi = np.full(t.shape, -55.0)
    tx = np.full(t.shape, -20.0)
    strict = analyze_contact(t, rssi, tx, config=calibrated_config(_cal(decision_minutes=30.0)))
    lenient = analyze_contact(t, rssi, tx, config=calibrated_config(_cal(decision_minutes=5.0)))
    assert not strict.tc4tl
    assert lenient.tc4tl
    assert strict.minutes_close == lenient.minutes_close


def test_shipped_calibrations_are_well_formed() -> None:
    assert set(PROXIMITY_CALIBRATIONS) == {DP3T_EXP05_2M_15MIN.name, DP3T_EXP34_2M_15MIN.name}
    for cal in PROXIMITY_CALIBRATIONS.values():
        assert cal.regime in ("dense", "sparse")
        assert (cal.distance_m, cal.minutes) == (2.0, 15.0)
        assert 30.0 <= cal.att_at_1m <= 80.0
        assert 30.0 <= cal.decision_att_at_1m <= 80.0
        assert 0.0 <= cal.decision_minutes <= 40.0
        assert cal.source
        assert cal.attenuation_scale
        for _, off in (*cal.rx_model_offsets, *cal.tx_model_offsets):
            assert abs(off) < 15.0
        cfg = calibrated_config(cal, rx_model="SM-G973F", tx_model="SM-A405FN")
        assert cfg.regime == cal.regime


def test_units_carry_median_and_count_and_features_have_their_columns() -> None:
    # minute 0: 3 sightings, minute 1: 1 sighting
    t = np.array([0.0, 10.0, 20.0, 70.0]) + T0 - T0 % 60
    att = np.array([50.0, 60.0, 70.0, 40.0])
    units = observation_units(t, att, EngineConfig(regime="dense", smoothing_s=0.0))
    assert units.count.tolist() == [3.0, 1.0]
    assert units.median_att.tolist() == [60.0, 40.0]
    f = unit_features(units)
    assert f.shape == (2, len(UNIT_FEATURES))
    col = {name: f[:, i] for i, name in enumerate(UNIT_FEATURES)}
    assert col["level"].tolist() == [50.0, 40.0]
    assert col["unit_min_att"].tolist() == [50.0, 40.0]
    assert col["log_count"] == pytest.approx(np.log([3.0, 1.0]))
    assert col["contact_level"].tolist() == [45.0, 45.0]
    assert col["log_observed_minutes"] == pytest.approx([np.log(2.0)] * 2)


def test_unit_classifier_replaces_the_path_loss_model_at_its_distance() -> None:
    t = T0 + np.arange(0.0, 20 * 60.0, 1.0)
    rssi = np.full(t.shape, -70.0)
    coef = [0.0] * len(UNIT_FEATURES)
    always = UnitClassifier(2.0, 40.0, tuple(coef), source="test")
    never = UnitClassifier(2.0, -40.0, tuple(coef))
    cfg = EngineConfig(regime="dense", model=PathLossModel())
    yes = analyze_contact(t, rssi, config=replace(cfg, classifier=always))
    no = analyze_contact(t, rssi, config=replace(cfg, classifier=never))
    assert yes.minutes_close == pytest.approx(20.0)
    assert yes.tc4tl
    assert no.minutes_close == pytest.approx(0.0, abs=1e-6)
    assert not no.tc4tl
    # other distances still come from the path-loss model
    plain = analyze_contact(t, rssi, config=cfg)
    assert yes.minutes_within[1.0] == plain.minutes_within[1.0]
    # a classifier fitted for another distance is ignored
    other = analyze_contact(
        t, rssi, config=replace(cfg, classifier=replace(always, distance_m=1.5))
    )
    assert other.minutes_close == plain.minutes_close


def test_unit_classifier_score_is_the_normal_tail_of_its_minutes() -> None:
    # Every unit close with probability 1/2: 10 expected minutes of 20, SD sqrt(20 / 4).
    t = T0 + np.arange(0.0, 20 * 60.0, 1.0)
    coin = UnitClassifier(2.0, 0.0, (0.0,) * len(UNIT_FEATURES))
    cfg = EngineConfig(regime="dense", classifier=coin)
    c = analyze_contact(t, np.full(t.shape, -70.0), config=cfg)
    assert c.minutes_close == pytest.approx(10.0)
    low, high = c.minutes_within[2.0][1:]
    assert high - low == pytest.approx(2 * 1.2816 * np.sqrt(5.0), rel=1e-3)
    assert c.score == pytest.approx(
        0.5 * math.erfc((15.0 - 10.0) / np.sqrt(5.0) / math.sqrt(2)), rel=1e-4
    )
    assert not c.tc4tl


def test_unit_classifier_uses_features_and_checks_its_length() -> None:
    coef = [0.0] * len(UNIT_FEATURES)
    coef[0] = -1.0  # P(close) falls with the level
    clf = UnitClassifier(2.0, 55.0, tuple(coef))
    p = clf.probability(np.array([[45.0] + [0.0] * 6, [65.0] + [0.0] * 6]))
    assert p[0] > 0.99
    assert p[1] < 0.01
    with pytest.raises(InvalidInput):
        UnitClassifier(2.0, 0.0, (1.0, 2.0))


def test_attenuation_floor_is_unchanged() -> None:
    att, _ = attenuation(np.array([-10.0]), None, default_tx=-26.0, rx_correction=0.0)
    assert att.tolist() == [0.0]


def test_score_map_makes_the_score_a_fitted_probability_of_the_margin() -> None:
    t = T0 + np.arange(0.0, 25 * 60, 1.0)
    rssi = np.full(t.shape, -70.0)
    plain = calibrated_config(_cal(), EngineConfig())
    assert plain.score_map is None
    mapped = calibrated_config(_cal(score_map=(-1.5, 0.2)), EngineConfig())
    assert mapped.score_map == (-1.5, 0.2)
    a = analyze_contact(t, rssi, np.full(t.shape, -20.0), config=plain)
    b = analyze_contact(t, rssi, np.full(t.shape, -20.0), config=mapped)
    assert b.tc4tl == a.tc4tl  # the map changes the probability, never the decision
    assert b.decision_minutes == a.decision_minutes
    assert b.decision_threshold == 10.0
    margin = b.decision_minutes - b.decision_threshold
    assert b.score == pytest.approx(1.0 / (1.0 + np.exp(-(-1.5 + 0.2 * margin))))
    assert a.score > 0.9  # the model's own probability: well inside 2 m for 25 min
    assert b.score < a.score
    for preset in PROXIMITY_CALIBRATIONS.values():
        assert preset.score_map is not None
        assert preset.score_map[1] > 0
