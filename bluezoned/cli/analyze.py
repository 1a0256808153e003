"""``bluezoned analyze``: contacts and the too-close-for-too-long decision from an RSSI CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from bluezoned.cli._common import CONTEXT_SETTINGS, translate_errors, utc_text
from bluezoned.const import FLEET_TX_REFERENCE_DB
from bluezoned.exposure.presets import (
    CWA_BUCKET_WEIGHTS,
    CWA_BUCKETS,
    GAEN_BUCKETS,
    PROXIMITY_CALIBRATIONS,
    ProximityCalibration,
)
from bluezoned.exposure.rssi_csv import MAX_IDS
from bluezoned.files import STDIN, read_bounded

if TYPE_CHECKING:
    from bluezoned.exposure.contacts import Contact


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--distance",
    type=click.FloatRange(0.1, 20.0),
    default=2.0,
    show_default=True,
    help="Too close: within this many metres.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(0.0, 24 * 60.0),
    default=15.0,
    show_default=True,
    help="Too long: at least this many (estimated) minutes within --distance.",
)
@click.option(
    "--tx-power",
    type=click.FloatRange(-50.0, 20.0),
    default=FLEET_TX_REFERENCE_DB,
    show_default=True,
    help="TX power (dBm, iPhone-equivalent) for rows without a tx_power value.",
)
@click.option(
    "--rx-correction",
    type=click.FloatRange(-50.0, 50.0),
    default=0.0,
    show_default=True,
    help="This receiver's RSSI correction (dB), added to every RSSI.",
)
@click.option(
    "--scanning",
    type=click.Choice(["auto", "dense", "sparse"]),
    default="auto",
    show_default=True,
    help="dense: every advert is reported; sparse: GAEN-style duty-cycled scans; auto: sparse "
    "for an id whose runs of sightings are brief (<= 20 s) and over 150 s apart.",
)
@click.option(
    "--buckets",
    default="cwa",
    show_default=True,
    metavar="cwa|gaen|T1,T2,T3",
    help="Attenuation bucket edges (dB) of bucket_seconds and weighted_minutes: CWA v2's "
    "63,73,79, GAEN-style 55,63,70, or three increasing numbers.",
)
@click.option(
    "--bucket-weights",
    default=None,
    metavar="W0,W1,W2,W3",
    help="Weights of the four buckets in weighted_minutes [default: CWA v2's 0.8,1,0.1,0 with "
    "--buckets cwa, else 1,1,1,0].",
)
@click.option(
    "--calibration",
    type=click.Choice(sorted(PROXIMITY_CALIBRATIONS)),
    default=None,
    help="Use a shipped calibration fitted on measured data: its distance, minutes and "
    "scanning apply.",
)
@click.option(
    "--rx-model",
    default=None,
    metavar="MODEL",
    help="With --calibration: the receiving phone's model, for its fitted offset (e.g. SM-G973F).",
)
@click.option(
    "--max-ids",
    type=click.IntRange(1, 10_000_000),
    default=MAX_IDS,
    show_default=True,
    help="Refuse FILE past this many distinct ids (transmitters): 900-1,500 are analysed a "
    "second, so an id column unique per row would take over an hour.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per id.")
@click.pass_context
def analyze(
    ctx: click.Context,
    file: Path,
    distance: float,
    minutes: float,
    tx_power: float,
    rx_correction: float,
    scanning: str,
    buckets: str,
    bucket_weights: str | None,
    calibration: str | None,
    rx_model: str | None,
    max_ids: int,
    as_json: bool,
) -> None:
    """Summarise each transmitter of FILE (CSV: id,t,rssi[,tx_power]) and decide close contact.

    FILE needs a header line; t is unix seconds, rssi and tx_power are dBm; '-' reads stdin.

    With --calibration the engine uses a calibration fitted on measured data and shipped with
    bluezoned; its attenuations are on the scale it was fitted on:

    \b
    {calibrations}
    """
    from bluezoned.exposure.contacts import EngineConfig, analyze_contacts, calibrated_config
    from bluezoned.exposure.rssi_csv import MAX_RSSI_CSV_BYTES, parse_rssi_csv_bytes

    thresholds, weights = _buckets(buckets, bucket_weights)
    config = EngineConfig(
        distance_m=distance,
        minutes=minutes,
        default_tx_power=tx_power,
        rx_correction=rx_correction,
        regime=scanning,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        bucket_thresholds=thresholds,
        bucket_weights=weights,
    )
    if calibration is not None:
        fitted = PROXIMITY_CALIBRATIONS[calibration]
        _check_compatible(ctx, fitted)
        config = calibrated_config(fitted, config, rx_model=rx_model)
        distance = fitted.distance_m
    elif rx_model is not None:
        raise click.UsageError("--rx-model needs --calibration")
    with translate_errors():
        source = "<stdin>" if str(file) == STDIN else str(file)
        data = read_bounded(file, MAX_RSSI_CSV_BYTES, what="an RSSI CSV")
        table = parse_rssi_csv_bytes(data, source=source, max_ids=max_ids)
        contacts = analyze_contacts(
            table.codes, table.t, table.rssi, table.tx_power, config=config, labels=table.labels
        )
    records = [_record(ident, c, distance) for ident, c in contacts.items()]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo(f"{source}: no sightings")
        return
    click.echo(
        f"{len(records)} transmitter(s); close contact = within {distance:g} m for >= {minutes:g} min"
    )
    for r in records:
        verdict = "CLOSE CONTACT" if r["close_contact"] else "no close contact"
        why = ""
        if calibration is not None:
            # The calibration decides on its own estimate: show it beside the minutes.
            sign = ">=" if r["close_contact"] else "<"
            why = f"; decision {r['decision_minutes']:.1f} {sign} {r['decision_threshold']:g} min"
        click.echo(
            f"{r['id']}: {utc_text(r['start'])} .. {utc_text(r['end'])}, {r['sightings']} sightings, "
            f"{r['minutes_close']:.1f} min within {distance:g} m "
            f"(80% {r['minutes_close_low']:.1f}-{r['minutes_close_high']:.1f}), "
            f"attenuation min {r['min_attenuation']:.0f} / typical {r['typical_attenuation']:.0f} dB, "
            f"weighted {r['weighted_minutes']:.1f} min, band {r['distance_band']}: "
            f"{verdict} (confidence {r['confidence']:.2f}){why}"
        )


analyze.help = (analyze.help or "").format(
    calibrations="\n    ".join(
        f"{c.name}: {c.attenuation_scale}" for c in PROXIMITY_CALIBRATIONS.values()
    )
)


def _buckets(
    edges: str, weights: str | None
) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """The bucket edges and weights of ``--buckets`` and ``--bucket-weights``; BadParameter
    naming the option when they are not numbers in range and in order."""
    named = {"cwa": CWA_BUCKETS, "gaen": GAEN_BUCKETS}
    thresholds = named.get(edges.strip().lower())
    if thresholds is None:
        values = _numbers(edges, 3, "--buckets", 0.0, 255.0)
        if not values[0] < values[1] < values[2]:
            raise click.BadParameter(f"{edges!r}: the edges must increase", param_hint="--buckets")
        thresholds = (values[0], values[1], values[2])
    if weights is None:
        chosen = CWA_BUCKET_WEIGHTS if thresholds == CWA_BUCKETS else (1.0, 1.0, 1.0, 0.0)
        return thresholds, chosen
    w = _numbers(weights, 4, "--bucket-weights", 0.0, 10.0)
    return thresholds, (w[0], w[1], w[2], w[3])


def _numbers(text: str, count: int, option: str, low: float, high: float) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(low <= v <= high for v in values):
        raise click.BadParameter(
            f"{text!r} is not {count} comma-separated numbers within {low:g}..{high:g}",
            param_hint=option,
        )
    return values


def _check_compatible(ctx: click.Context, fitted: ProximityCalibration) -> None:
    """A UsageError when an option given on the command line contradicts the calibration."""
    fixed = {"distance": fitted.distance_m, "minutes": fitted.minutes, "scanning": fitted.regime}
    for name, value in fixed.items():
        given = ctx.params[name]
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE and given != value:
            raise click.UsageError(
                f"--{name} {given}: calibration {fitted.name!r} is fitted for --{name} {value}"
            )


def _record(ident: str, c: Contact, distance: float) -> dict[str, Any]:
    from bluezoned.exposure.contacts import BAND_NAMES

    expected, low, high = c.minutes_within[distance]
    return {
        "id": ident,
        "start": c.start,
        "end": c.end,
        "duration_s": c.observed_duration_s,
        "sightings": c.n_sightings,
        "scans": c.n_scans,
        "coverage": round(c.coverage, 4),
        "scanning": c.regime,
        "minutes_close": round(expected, 3),
        "minutes_close_low": round(low, 3),
        "minutes_close_high": round(high, 3),
        "close_contact": c.tc4tl,
        "decision_minutes": round(c.decision_minutes, 3),
        "decision_threshold": c.decision_threshold,
        "score": round(c.score, 4),
        "confidence": round(c.confidence, 4),
        "min_attenuation": c.min_att,
        "typical_attenuation": c.typical_att,
        "p90_attenuation": c.p90_att,
        "weighted_minutes": round(c.weighted_minutes, 3),
        "bucket_seconds": list(c.bucket_seconds),
        "distance_band": c.distance_band,
        "band_probabilities": dict(
            zip(BAND_NAMES, (round(p, 4) for p in c.band_probabilities), strict=True)
        ),
        "minutes_within": {f"{d:g}": round(v[0], 3) for d, v in c.minutes_within.items()},
        "uncalibrated_tx": c.uncalibrated_tx,
        "possible_relay": c.possible_relay,
    }
