"""Key-derivation throughput: the bulk path against the naive one-key-at-a-time loop, same run.

A "key" here is the whole job a matcher does per downloaded TEK: derive its RPIK and the
RPIs of all 144 intervals. Run: ``python bench/bench_keys.py [--keys N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bluezoned.exposure import bulk, keys
from bluezoned.models import Tek

START = 2_900_000 // 144 * 144


def naive(teks: list[Tek]) -> int:
    """What a straightforward port does: HKDF object per key, a cipher call per interval."""
    produced = 0
    for tek in teks:
        rpik = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"EN-RPIK").derive(
            tek.key_data
        )
        for enin in range(tek.rolling_start, tek.rolling_end):
            block = b"EN-RPI" + bytes(6) + enin.to_bytes(4, "little")
            Cipher(algorithms.AES(rpik), modes.ECB()).encryptor().update(block)
            produced += 1
    return produced


def per_key_batched(teks: list[Tek]) -> int:
    """The public per-key API: HKDF, then all intervals in one AES call."""
    return sum(len(keys.rpis_of(tek)) for tek in teks)


def bulk_with(backend: str) -> Callable[[list[Tek]], int]:
    """The matcher's derivation (exposure.bulk) with one backend: all RPIs of all keys."""

    def run(teks: list[Tek]) -> int:
        firsts = [t.rolling_start for t in teks]
        counts = [t.rolling_period for t in teks]
        return len(
            bulk.derive_rpis_bulk([t.key_data for t in teks], firsts, counts, backend=backend)
        )

    return run


def measure(
    func: Callable[[list[Tek]], int], teks: list[Tek], repeats: int = 3
) -> dict[str, float]:
    """Best of ``repeats`` runs: keys/s and RPIs/s."""
    best = float("inf")
    rpis = 0
    for _ in range(repeats):
        started = time.perf_counter()
        rpis = func(teks)
        best = min(best, time.perf_counter() - started)
    return {
        "keys": len(teks),
        "seconds": best,
        "keys_per_s": len(teks) / best,
        "rpis_per_s": rpis / best,
    }


def main() -> None:
    """Print each path's throughput and its speed-up over the naive loop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=20_000, help="keys for the fast paths")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    teks = [Tek(os.urandom(16), START, 144) for _ in range(args.keys)]
    naive_teks = teks[: max(1, args.keys // 10)]
    results = {
        "naive": measure(naive, naive_teks),
        "per_key_batched": measure(per_key_batched, teks),
    }
    for backend in bulk.available_backends():
        bulk_with(backend)(teks[:10])  # a backend's one-off set-up (numba compiles) is not timed
        results[f"bulk ({backend})"] = measure(bulk_with(backend), teks)
    base = results["naive"]["keys_per_s"]
    for result in results.values():
        result["speedup"] = result["keys_per_s"] / base
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'path':<24}{'keys':>8}{'keys/s':>12}{'RPIs/s':>14}{'vs naive':>10}")
    for name, r in results.items():
        print(
            f"{name:<24}{r['keys']:>8}{r['keys_per_s']:>12,.0f}{r['rpis_per_s']:>14,.0f}{r['speedup']:>9.1f}x"
        )


if __name__ == "__main__":
    main()
