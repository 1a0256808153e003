"""``python -m bench.accuracy [--json] [--quick]``: the exposure.md §7 evaluation on the real datasets.

Reads ../shared/data/rssi in place (or $BLUEZONED_SHARED/data/rssi); when it is absent the
evaluation says so and exits 0. Every number is computed in this run: the engine, the naive
baseline (per-unit median RSSI against a tuned threshold) and the CWA v2 default rule.
The engine row is ``tracks.ENGINE_VARIANT``; the other engine variants and optimistic bounds
(in-sample tuning, tracking oracle) are printed beside it. ``--variants`` adds the costly ones
(inner-nDCF offset choice, per-unit logistic model); ``--fit-presets`` prints the calibrations
shipped in ``bluezoned.exposure.presets`` (fitted on all scenarios). The static-distance
corpora (Herald, and pc-ng, MITRE and MIT LL in static_sets.py; ``--no-static-sets`` skips the
latter three), the synthetic long Herald contacts (herald_long.py; ``--no-herald-long``) and the
simulator, validated first (``--no-simulator``), follow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.accuracy import data
from bench.accuracy.tracks import (
    DISTANCES,
    ENGINE_VARIANT,
    MINUTES,
    WELL_TRACKED,
    TrackResult,
    dense_pairs,
    evaluate,
    gaen_pairs,
    track_distance,
)
from bench.accuracy.tram import evaluate_tram

if TYPE_CHECKING:
    from bench.accuracy.herald_long import LongTrack as HeraldLong

TARGETS = {"exp05": 0.45, "exp34": 0.35}
"""Issue #4 / exposure.md §8: LOSO nDCF at 2 m / 15 min; duration MAE ≤ 5 min."""
TARGET_MAE = 5.0


def main(argv: list[str] | None = None) -> int:
    """Run every track whose data is present; print a table or, with --json, one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--quick", action="store_true", help="only the headline condition 2 m / 15 min"
    )
    parser.add_argument(
        "--no-simulator", action="store_true", help="skip the simulator diagnostics"
    )
    parser.add_argument(
        "--no-static-sets",
        action="store_true",
        help="skip the pc-ng, MITRE and MIT LL static-distance corpora (about 5 s)",
    )
    parser.add_argument(
        "--no-herald-long",
        action="store_true",
        help="skip the synthetic long contacts built from Herald dwells (about 15-25 s)",
    )
    parser.add_argument(
        "--herald-seeds",
        type=int,
        default=3,
        metavar="N",
        help="draw the Herald long contacts with N seeds (the first in full, the others at "
        "2 m / 15 min; about 15 s each)",
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also run the costly engine variants (inner-nDCF offset choice, logistic model)",
    )
    parser.add_argument(
        "--fit-presets",
        action="store_true",
        help="fit the shipped calibrations on all scenarios and print them as Python data",
    )
    args = parser.parse_args(argv)
    root = data.rssi_dir()
    if not root.is_dir():
        print(
            f"accuracy: shared datasets not found at {root}; set BLUEZONED_SHARED to the folder "
            "holding data/rssi. Nothing evaluated."
        )
        return 0
    if args.fit_presets:
        from bench.accuracy.tracks import fit_preset

        for track, loader in (("exp05", dense_pairs), ("exp34", gaen_pairs)):
            print(repr(fit_preset(track, loader(), 2.0, 15.0)))
        return 0
    started = time.monotonic()
    conditions = [(2.0, 15.0)] if args.quick else [(d, m) for d in DISTANCES for m in MINUTES]
    results: list[TrackResult] = []
    distance: dict[str, dict[str, dict[str, float]]] = {}
    for track, loader in (("exp05", dense_pairs), ("exp34", gaen_pairs)):
        try:
            pairs = loader()
        except FileNotFoundError as exc:
            print(f"accuracy: {track} skipped, missing {exc}", file=sys.stderr)
            continue
        results.extend(evaluate(track, pairs, d, m, variants=args.variants) for d, m in conditions)
        distance[track] = track_distance(track, pairs)
    tram_rules, tram_r = evaluate_tram(data.load_tram())
    from bench.accuracy.static import evaluate_static, load_herald_windows

    static = evaluate_static(load_herald_windows())
    static_sets: dict[str, Any] | None = None
    if not args.no_static_sets:
        from bench.accuracy.static_sets import run_static_sets

        static_sets = run_static_sets()
    herald_long: HeraldLong | None = None
    if not args.no_herald_long:
        from bench.accuracy.herald_long import run_herald_long

        herald_long = run_herald_long(quick=args.quick, replicas=max(args.herald_seeds - 1, 0))
    sim: dict[str, Any] | None = None
    if not args.no_simulator:
        from bench.accuracy.simulator import run_diagnostics

        sim = run_diagnostics()
    elapsed = time.monotonic() - started
    if args.json:
        out = {
            "tracks": [asdict(r) for r in results],
            "distance_segments": distance,
            "tram": {"r_mean_att_distance": tram_r, "rules": [asdict(r) for r in tram_rules]},
            "static_herald": static,
            "static_sets": None
            if static_sets is None
            else {k: v if isinstance(v, str) else asdict(v) for k, v in static_sets.items()},
            "herald_long": None if herald_long is None else asdict(herald_long),
            "simulator": sim,
            "targets": {"ndcf_2m_15min": TARGETS, "duration_mae_min": TARGET_MAE},
            "seconds": elapsed,
        }
        print(json.dumps(out, indent=2))
        return 0
    _print_tracks(results)
    print()
    _print_versus(results)
    print()
    _print_well_tracked(results)
    print()
    _print_distance(distance)
    print()
    _print_symmetric(results)
    print()
    _print_bands(results)
    print()
    _print_intervals(results)
    print()
    _print_score_calibration(results)
    print()
    _print_variants(results)
    print()
    print(f"Leith tram (72 rows, TPR/FPR at <= 2 m; r(mean attenuation, distance) = {tram_r:.2f})")
    for rule in tram_rules:
        print(f"  {rule.name:<64} TPR {rule.tpr:.2f}  FPR {rule.fpr:.2f}")
    print()
    print(
        f"Herald static distances, 60-s windows ({static['windows']['n']:.0f}), "
        f"leave-one-receiver-model-out ({static['windows']['models']:.0f} models); nDCF"
    )
    for name in ("engine", "naive"):
        row = static[name]
        print(f"  {name:<7} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if static_sets is not None:
        print()
        _print_static_sets(static_sets)
    if herald_long is not None:
        print()
        _print_herald_long(herald_long)
    if sim is not None:
        print()
        _print_sim(sim)
    print(f"\n({elapsed:.0f} s)")
    return 0


def _print_tracks(results: list[TrackResult]) -> None:
    print(
        "DP-3T, leave-one-scenario-out; nDCF = P_miss + P_fa [bootstrap 95% CI over pairs]; "
        "MAE/bias in minutes"
    )
    head = f"{'track':<6} {'d':>4} {'T':>3} {'prev':>5}  {'method':<8}{'nDCF':>6} {'95% CI':>13} {'P_miss':>6} {'P_fa':>5} {'prec':>5} {'rec':>5} {'F1':>5} {'MAE':>5} {'bias':>5}"
    print(head)
    print("-" * len(head))
    for r in results:
        for name, m in (("engine", r.engine), ("naive", r.naive), ("CWA v2", r.cwa)):
            dd = m.decision
            flag = ""
            if name == "engine" and (r.distance, r.minutes) == (2.0, 15.0):
                target = TARGETS[r.track]
                ok = dd.ndcf <= target and m.duration_mae <= TARGET_MAE
                flag = f"  target nDCF<={target} MAE<={TARGET_MAE:g}: {'met' if ok else 'NOT met'}"
            if name == "naive":
                flag = f"  (oracle {r.naive_oracle_ndcf:.3f})"
            if name == "CWA v2":
                flag = "  (MAE of weighted minutes)"
            print(
                f"{r.track:<6} {r.distance:>4g} {r.minutes:>3g} {dd.prevalence:>5.2f}  {name:<8}"
                f"{dd.ndcf:>6.3f} [{dd.ndcf_ci[0]:.2f}, {dd.ndcf_ci[1]:.2f}] {dd.p_miss:>6.2f} "
                f"{dd.p_fa:>5.2f} {dd.precision:>5.2f} {dd.recall:>5.2f} {dd.f1:>5.2f} {m.duration_mae:>5.1f} "
                f"{m.duration_bias:>+5.1f}{flag}"
            )


def _print_versus(results: list[TrackResult]) -> None:
    print(
        "Engine minus baseline on the same pairs, paired bootstrap 95% CI over contacts (both "
        "directions drawn together); negative: the engine is better; an interval excluding 0 "
        "is beyond the noise of these data"
    )
    for r in results:
        mae = r.engine.duration_mae_ci
        parts = [
            f"{_condition(r)}  engine MAE {r.engine.duration_mae:.1f} [{mae[0]:.1f}, {mae[1]:.1f}]"
        ]
        for name, diff in r.versus.items():
            nd, md = diff["ndcf"], diff["mae"]
            parts.append(
                f"vs {name}: nDCF {nd.difference:+.3f} [{nd.ci[0]:+.3f}, {nd.ci[1]:+.3f}], "
                f"MAE {md.difference:+.1f} [{md.ci[0]:+.1f}, {md.ci[1]:+.1f}]"
            )
        print("  " + "  ".join(parts))


def _print_distance(distance: dict[str, dict[str, dict[str, float]]]) -> None:
    print(
        "Distance per segment (exposure.md §7.1: each tracked minute or scan, truth its median "
        "camera distance), leave-one-scenario-out; nDCF"
    )
    names = {
        "engine": "engine estimate (path-loss model, 1-m attenuation fitted)",
        "engine, tuned": "engine level, threshold tuned per distance",
        "naive": "naive median RSSI, threshold tuned",
    }
    for track, rows in distance.items():
        for key, label in names.items():
            row = rows[key]
            print(
                f"  {track:<6} {label:<58} "
                + "  ".join(f"{k} {v:.3f}" for k, v in row.items())
                + ("" if key != "naive" else f"  ({rows['segments']['n']:.0f} segments)")
            )


def _one_per_distance(results: list[TrackResult]) -> list[TrackResult]:
    """The first result of each (track, distance): for what does not depend on T."""
    first: dict[tuple[str, float], TrackResult] = {}
    for r in results:
        first.setdefault((r.track, r.distance), r)
    return list(first.values())


def _condition(r: TrackResult) -> str:
    """The track and rule of a result, in fixed columns."""
    return f"{r.track:<6} {r.distance:>4g} m {r.minutes:>3g} min"


def _print_well_tracked(results: list[TrackResult]) -> None:
    print(
        f"Pairs the cameras tracked for >= {WELL_TRACKED:.0%} of their scan time (the truth "
        "counts tracked time only; a diagnostic, not a result): nDCF, same predictions"
    )
    for r in results:
        w = r.well_tracked
        print(
            f"  {_condition(r)}  {w['pairs']:.0f} of "
            f"{r.engine.decision.n} pairs  engine {w['engine']:.3f}  naive {w['naive']:.3f}  "
            f"CWA v2 {w['cwa']:.3f}"
        )


def _print_symmetric(results: list[TrackResult]) -> None:
    print("Symmetric (unordered pairs; close if either direction decides so; truth = max): nDCF")
    for r in results:
        sym = r.symmetric_ndcf
        print(
            f"  {_condition(r)}  engine {sym['engine']:.3f}  "
            f"naive {sym['naive']:.3f}  CWA v2 {sym['cwa']:.3f}"
        )


def _print_bands(results: list[TrackResult]) -> None:
    print(
        "Distance band, held out, against the band of the pair's time-weighted median camera "
        "distance (<1, 1-2, 2-3, >3 m): accuracy, mean error in bands (one rule per distance: "
        "the band does not depend on T)"
    )
    for r in _one_per_distance(results):
        b = r.band
        print(
            f"  {r.track:<6} {r.distance:>4g} m  {b['pairs']:.0f} pairs  "
            f"median band (reported) {b['median_accuracy']:.3f}, {b['median_error']:.2f}  "
            f"most probable band {b['modal_accuracy']:.3f}, {b['modal_error']:.2f}"
        )


def _print_intervals(results: list[TrackResult]) -> None:
    print(
        "80 % interval of the minutes within d: share of pairs whose truth it holds, median "
        "width (one rule per distance: it does not depend on T); 'fitted' held out, 'default' "
        "the uncalibrated default configuration"
    )
    for r in _one_per_distance(results):
        f, d = r.interval, r.default_interval
        print(
            f"  {r.track:<6} {r.distance:>4g} m  fitted {f['coverage']:.2f} "
            f"({f['median_width']:.1f} min)  default {d['coverage']:.2f} "
            f"({d['median_width']:.1f} min)"
        )


def _print_score_calibration(results: list[TrackResult]) -> None:
    print(
        "Engine score as P(close contact): Brier [skill vs the training prevalence], AUC; "
        "reliability: predicted -> observed (n). 'fitted' = held out, with the fold's fitted "
        "calibration; 'default' = the uncalibrated default configuration (nothing fitted here)"
    )
    for r in results:
        for name, sc in (("fitted", r.score), ("default", r.default_score)):
            if sc is None:
                continue
            bins = "  ".join(f"{b.predicted:.2f}->{b.observed:.2f} ({b.n})" for b in sc.bins)
            print(
                f"  {_condition(r)}  {name:<7}  Brier {sc.brier:.3f} [{sc.skill:+.2f}]  "
                f"AUC {sc.auc:.3f}  {bins}"
            )


def _print_variants(results: list[TrackResult]) -> None:
    print(
        f"Engine variants, same protocol and run (engine row = {ENGINE_VARIANT}); "
        "nDCF [95% CI], MAE; symmetric nDCF"
    )
    for r in results:
        for name, m in r.variants.items():
            dd = m.decision
            print(
                f"  {_condition(r)}  {name:<28} "
                f"{dd.ndcf:.3f} [{dd.ndcf_ci[0]:.2f}, {dd.ndcf_ci[1]:.2f}]  MAE {m.duration_mae:4.1f}"
                f"  sym {r.symmetric_ndcf.get(name, float('nan')):.3f}"
            )
        if r.bounds:
            print(
                "    bounds (optimistic, not results): "
                + ", ".join(f"{k} {v:.3f}" for k, v in r.bounds.items())
            )
        for name, picks in r.chosen.items():
            print(f"    {name} chose: " + ", ".join(f"{s} {v}" for s, v in picks.items()))


def _print_static_sets(sets: dict[str, Any]) -> None:
    from bench.accuracy.static_sets import SingleDistanceResult, StaticResult

    for name, res in sets.items():
        if isinstance(res, str):
            print(f"{name}: skipped, {res}")
        elif isinstance(res, StaticResult):
            pcng = name.startswith("pc-ng")
            split = "leave-one-device-out" if pcng else "leave-one-tester-out"
            two = "pc-ng's own <= 2 m label" if pcng else "<= 2 m (same truth as 1.8 m: 6 ft)"
            print(
                f"{name}: 60-s windows ({res.n_windows}), {split} ({res.n_folds} folds); "
                f"nDCF (2 m = {two}; total = 1.2+1.8+3 m); P_miss/P_fa at 2 m; "
                "distance MAE of the point estimate"
            )
            for m, row in res.ndcf.items():
                pm, pf = res.p_miss_fa_2m[m]
                mae = res.distance_mae_m.get(m)
                print(
                    f"  {m:<10} "
                    + "  ".join(f"{k} {v:.3f}" for k, v in row.items())
                    + f"  | 2 m P_miss {pm:.2f} P_fa {pf:.2f}"
                    + ("" if mae is None else f"  | MAE {mae:.2f} m")
                )
        elif isinstance(res, SingleDistanceResult):
            print(
                f"{name}: all windows at 1.83 m, leave-one-TestPhone-out within each receiver; "
                "recall of <= 2 m (engine: p >= 0.5; naive: threshold catching 90 % of the "
                "training phones' windows), engine median |error|"
            )
            for rx, row in res.recall_2m.items():
                print(
                    f"  {rx:<7} n {res.n_windows[rx]:>3}  engine {row['engine']:.2f}  "
                    f"naive {row['naive']:.2f}  |err| {res.median_abs_err_m[rx]:.2f} m"
                )
            print(
                "  by carried phone: "
                + ", ".join(
                    f"{g} {r['engine']:.2f}/{r['naive']:.2f}"
                    for g, r in res.recall_by_phone.items()
                )
            )


def _print_herald_long(track: HeraldLong) -> None:
    print(
        f"Herald synthetic long contacts: {track.n_sequences} sequences (seed {track.seed}, "
        f"mean {track.mean_minutes:.0f} min, 30-90 min of 4-30-min dwells from "
        f"{track.n_segments} dwells; {track.n_pairs} ordered model pairs, one per sequence), "
        f"leave-one-receiver-model-out ({len(track.models)} models: {', '.join(track.models)}); "
        "exact truth minutes; MAE/bias in minutes"
    )
    head = (
        f"  {'d':>4} {'T':>3} {'prev':>5}  {'method':<15}{'nDCF':>6} {'95% CI':>13} "
        f"{'P_miss':>6} {'P_fa':>5} {'MAE':>5} {'bias':>6}"
    )
    print(head)
    for r in track.results:
        for name, m in r.methods.items():
            dd = m.decision
            note = "  (weighted minutes)" if m.note else ""
            print(
                f"  {r.distance:>4g} {r.minutes:>3g} {dd.prevalence:>5.2f}  {name:<15}"
                f"{dd.ndcf:>6.3f} [{dd.ndcf_ci[0]:.2f}, {dd.ndcf_ci[1]:.2f}] {dd.p_miss:>6.2f} "
                f"{dd.p_fa:>5.2f} {m.duration_mae:>5.1f} {m.duration_bias:>+6.1f}{note}"
            )
    head_r = next(
        (r for r in track.results if (r.distance, r.minutes) == (2.0, 15.0)),
        track.results[0] if track.results else None,
    )
    if head_r is not None:
        print(
            f"  per held-out receiver model, nDCF at {head_r.distance:g} m / {head_r.minutes:g} min:"
        )
        for name, row in head_r.per_model_ndcf.items():
            print(f"    {name:<15}" + "  ".join(f"{k} {v:.2f}" for k, v in row.items()))
    if head_r is not None and track.replicas:
        draws = {track.seed: {n: m.decision.ndcf for n, m in head_r.methods.items()}}
        draws.update(track.replicas)
        print(
            f"  other draws of the sequences, nDCF at 2 m / 15 min (seeds {', '.join(map(str, draws))}):"
        )
        for name in head_r.methods:
            values = [row[name] for row in draws.values() if name in row]
            print(
                f"    {name:<15}"
                + "  ".join(f"{v:.3f}" for v in values)
                + f"   mean {float(np.mean(values)):.3f}"
            )


def _print_sim(sim: dict[str, Any]) -> None:
    print("Simulator (seeded; diagnostics only, exposure.md §10). Validation first:")
    head = f"  {'statistic':<44} {'simulator':>9}  {'real':<36} {'tolerance':<11} result"
    print(head)
    for v in sim["validation"]:
        lo, hi = v["tolerance"]
        print(
            f"  {v['statistic']:<44} {v['simulator']:>9.3g}  {v['real']:<36} "
            f"{f'{lo:g}-{hi:g}':<11} {'pass' if v['pass'] else 'FAIL'}"
        )
    if not sim["validated"]:
        print("  (a statistic failed: the results below are not backed by a validated simulator)")
    _print_surface(sim["results"], sim["summary"])


def _print_surface(points: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(
        "  Sweep at 2 m / 15 min (§10 rule 3: every combination; tuned on the tuning seeds, "
        "scored on the reporting seeds): nDCF engine/naive, MAE engine/naive (min)"
    )
    bodies = sorted({p["body_x"] for p in points})
    print(
        f"  {'scanning':<8} {'tx sd':>5} {'sigma':>6}  "
        + "  ".join(f"{f'body x{b:g}':<21}" for b in bodies)
    )
    rows: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    for p in points:
        rows.setdefault((p["profile"], p["tx_sd"], p["sigma"]), []).append(p)
    for (profile, tx_sd, sigma), row in rows.items():
        cells = "  ".join(
            f"{p['engine_nDCF']:.2f}/{p['naive_nDCF']:.2f} {p['engine_MAE']:4.1f}/{p['naive_MAE']:4.1f}"
            for p in sorted(row, key=lambda q: q["body_x"])
        )
        print(f"  {profile:<8} {tx_sd:>5g} {sigma:>6}  {cells}")
    lo, hi = summary["nDCF_difference_range"]
    mlo, mhi = summary["MAE_difference_range"]
    by_scanning = ", ".join(
        f"{k} {v}" for k, v in summary["engine_better_nDCF_by_scanning"].items()
    )
    print(
        f"  engine better than naive at {summary['engine_better_nDCF']} of {summary['points']} "
        f"points on nDCF ({by_scanning}; difference {lo:+.2f} to {hi:+.2f}) and at "
        f"{summary['engine_better_MAE']} on MAE ({mlo:+.1f} to {mhi:+.1f} min)"
    )


if __name__ == "__main__":
    sys.exit(main())
