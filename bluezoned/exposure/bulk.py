"""Bulk RPI derivation for many published keys at once: the matcher's hot path.

Pure: no I/O, no clock. Three exact backends compute the same bytes as ``keys.derive_rpis``:

* ``numba`` - one compiled loop per chunk of keys calling libcrypto's SHA-256 and AES-ECB
  directly, testing each RPI's 8-byte prefix against the caller's table as it is made, so
  the 144 RPIs of a key never leave L1 cache; about 4x faster again than ``openssl``. Used
  when numba is installed: from ``NUMBA_COLD_MIN_KEYS`` keys in a process that has not
  compiled it yet (compiling takes seconds), from ``NUMBA_MIN_KEYS`` once it has.
* ``openssl`` - HKDF by ``hashlib`` with the constant HMAC pads pre-absorbed, and AES-128-ECB
  through one reused libcrypto ``EVP_CIPHER_CTX`` (ctypes) that is only re-keyed per key.
  This removes the ~6 us per-key cipher-object setup of ``cryptography`` and runs about
  5x faster. Timing side channels do not matter: diagnosis keys are public.
* ``cryptography`` - the reference path, used when libcrypto cannot be loaded or fails its
  self-test against ``cryptography`` on the official test vector.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bluezoned.const import MAX_ENIN, RPI_LENGTH, RPIK_INFO, TEK_LENGTH
from bluezoned.errors import InvalidInput
from bluezoned.exposure.keys import padded_data

U8Array = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
KeyInput = U8Array | Sequence[bytes]
"""TEKs as an (N, 16) uint8 array or as N 16-byte strings."""

BACKEND_NUMBA: Final = "numba"
BACKEND_OPENSSL: Final = "openssl"
BACKEND_CRYPTOGRAPHY: Final = "cryptography"
BACKENDS: Final = (BACKEND_NUMBA, BACKEND_OPENSSL, BACKEND_CRYPTOGRAPHY)
NUMBA_MIN_KEYS: Final = 5_000
"""Once the kernel is compiled in this process, the automatic choice uses numba from this many
keys: below, the per-call set-up dominates."""
NUMBA_COLD_MIN_KEYS: Final = 500_000
"""Before it is compiled, numba is chosen only from this many keys. Compiling takes 4-6 s here,
and libcrypto alone matches about 130,000 keys/s in one process against numba's 1.1 million
on two threads (bench/bench_match.py), so compiling pays for itself from about 550,000 keys.
A one-shot ``bluezoned sync`` of a 50,000-key day should not spend 4 s compiling."""

_LIBCRYPTO_NAMES: Final = ("libcrypto.so.3", "libcrypto.so", "libcrypto.3.dylib", "libcrypto.dylib")
_SHA256_BLOCK: Final = 64
_SHARED_SPAN_BLOCKS: Final = 4096
"""Runs spanning at most this many intervals (28 days) share one PaddedData buffer."""
_SELF_TEST_TEK: Final = bytes.fromhex("75c734c6dd1a782de7a965da5eb93125")
_SELF_TEST_START: Final = 2642976
_SELF_TEST_RPI0: Final = bytes.fromhex("8be6cd371c5c891604bfbe49df845096")
_SELF_TEST_RPI143: Final = bytes.fromhex("f431b62ecf443102ce4ed0407de54bd4")
_EVERYTHING: Final = np.full(1, 0xFF, dtype=np.uint8)
_EVERYTHING_SHIFT: Final = 61
"""A bit table of 8 slots, all set: every RPI is a candidate (plain derivation)."""

# HMAC-SHA256 with the fixed all-zero HKDF salt: both pads are constant, so their
# compression is done once and each key only copies the pre-absorbed state.
_PRK_INNER: Final = hashlib.sha256(bytes([0x36]) * _SHA256_BLOCK)
_PRK_OUTER: Final = hashlib.sha256(bytes([0x5C]) * _SHA256_BLOCK)
_XOR_IPAD: Final = bytes(i ^ 0x36 for i in range(256))
_XOR_OPAD: Final = bytes(i ^ 0x5C for i in range(256))
_IPAD_TAIL: Final = bytes([0x36]) * 32
_OPAD_TAIL: Final = bytes([0x5C]) * 32
_RPIK_EXPAND: Final = RPIK_INFO + b"\x01"


def rpik_fast(tek: bytes) -> bytes:
    """RPIK = HKDF-SHA256(TEK, salt=None, info='EN-RPIK')[:16], by hashlib with pre-absorbed pads."""
    if len(tek) != TEK_LENGTH:
        raise InvalidInput(f"TEK must be {TEK_LENGTH} bytes, got {len(tek)}")
    inner = _PRK_INNER.copy()
    inner.update(tek)
    outer = _PRK_OUTER.copy()
    outer.update(inner.digest())
    prk = outer.digest()
    expand = hashlib.sha256(prk.translate(_XOR_IPAD) + _IPAD_TAIL + _RPIK_EXPAND).digest()
    return hashlib.sha256(prk.translate(_XOR_OPAD) + _OPAD_TAIL + expand).digest()[:RPI_LENGTH]


def padded_blocks(first_enin: int, count: int) -> bytes:
    """PaddedData of ``count`` consecutive intervals from ``first_enin`` (protocol.md §2.3)."""
    if count < 0 or first_enin < 0 or first_enin + count - 1 > MAX_ENIN:
        raise InvalidInput(f"bad interval run: first {first_enin}, count {count}")
    return padded_data(np.arange(first_enin, first_enin + count, dtype=np.int64))


def available_backends() -> tuple[str, ...]:
    """The exact backends usable here, fastest first; ``cryptography`` is always present."""
    found = []
    if _numba_kernel() is not None:
        found.append(BACKEND_NUMBA)
    if _libcrypto() is not None:
        found.append(BACKEND_OPENSSL)
    found.append(BACKEND_CRYPTOGRAPHY)
    return tuple(found)


def choose_backend(n_keys: int, requested: str | None = None) -> str:
    """``requested`` when given (InvalidInput if unknown), else the fastest sensible for ``n_keys`` keys."""
    if requested is not None:
        if requested not in BACKENDS:
            raise InvalidInput(f"unknown derivation backend {requested!r}")
        return requested
    threshold = NUMBA_MIN_KEYS if numba_compiled() else NUMBA_COLD_MIN_KEYS
    if n_keys >= threshold and _numba_kernel() is not None:
        return BACKEND_NUMBA
    return BACKEND_OPENSSL if _libcrypto() is not None else BACKEND_CRYPTOGRAPHY


def derive_rpis_bulk(
    teks: KeyInput,
    first: Sequence[int] | I64Array,
    count: Sequence[int] | I64Array,
    *,
    backend: str | None = None,
) -> U8Array:
    """RPIs of interval runs ``[first[i], first[i] + count[i])`` of each TEK, key after key, as (sum(count), 16) uint8."""
    key_data, firsts, counts = _check_inputs(teks, first, count)
    positions, rpis = _run(key_data, firsts, counts, _EVERYTHING, _EVERYTHING_SHIFT, backend)
    if positions.shape[0] != int(counts.sum()):
        raise InvalidInput("derivation lost RPIs")
    return rpis


def prefix_candidates(
    teks: KeyInput,
    first: Sequence[int] | I64Array,
    count: Sequence[int] | I64Array,
    table: U8Array,
    shift: int,
    *,
    backend: str | None = None,
) -> tuple[I64Array, U8Array]:
    """Derive the runs as ``derive_rpis_bulk`` does, keep RPIs whose prefix bit is set in ``table``.

    The prefix is the RPI's first 8 bytes as a little-endian uint64 shifted right by
    ``shift``; ``table`` holds one bit per prefix value, little-endian within each byte
    (``prefix_table`` builds it).
    Returns their positions in the key-after-key concatenation and their 16 bytes. A prefix
    filter only: callers confirm candidates on all 16 bytes.
    """
    key_data, firsts, counts = _check_inputs(teks, first, count)
    if table.dtype != np.uint8 or table.ndim != 1 or not 32 <= shift <= 61:
        raise InvalidInput("table must be a 1-D uint8 bit table and shift in 32..61")
    if table.shape[0] != (1 << (64 - shift)) // 8:
        raise InvalidInput(f"table needs 2^{64 - shift} bits for shift {shift}")
    return _run(key_data, firsts, counts, table, shift, backend)


def prefix_table(rpis: U8Array, bits: int) -> tuple[U8Array, int]:
    """The bit table and shift for ``prefix_candidates`` with 2^``bits`` slots, marking the given (M, 16) RPIs."""
    if not 3 <= bits <= 32:
        raise InvalidInput(f"prefix table bits must be 3..32, got {bits}")
    shift = 64 - bits
    table = np.zeros((1 << bits) // 8, dtype=np.uint8)
    slot = np.ascontiguousarray(rpis, dtype=np.uint8).view("<u8")[:, 0] >> np.uint64(shift)
    np.bitwise_or.at(
        table, (slot >> np.uint64(3)).astype(np.intp), (1 << (slot & np.uint64(7))).astype(np.uint8)
    )
    return table, shift


# --- Shared plumbing -------------------------------------------------------------------


def _check_inputs(
    teks: KeyInput, first: Sequence[int] | I64Array, count: Sequence[int] | I64Array
) -> tuple[U8Array, I64Array, I64Array]:
    if isinstance(teks, np.ndarray):
        key_data = np.ascontiguousarray(teks, dtype=np.uint8)
    else:
        joined = b"".join(teks)
        if len(joined) != TEK_LENGTH * len(teks) or any(len(t) != TEK_LENGTH for t in teks):
            raise InvalidInput(f"every TEK must be {TEK_LENGTH} bytes")
        key_data = np.frombuffer(joined, dtype=np.uint8).reshape(len(teks), TEK_LENGTH)
    if key_data.ndim != 2 or key_data.shape[1] != TEK_LENGTH:
        raise InvalidInput(f"TEKs must be (N, {TEK_LENGTH}) bytes")
    firsts = np.asarray(first, dtype=np.int64)
    counts = np.asarray(count, dtype=np.int64)
    n = key_data.shape[0]
    if firsts.shape != (n,) or counts.shape != (n,):
        raise InvalidInput("teks, first and count must have the same length")
    if n and (bool((counts < 0).any()) or int(firsts.min()) < 0):
        raise InvalidInput("interval runs must have a non-negative start and count")
    if n and int((firsts + counts).max()) - 1 > MAX_ENIN:
        raise InvalidInput("interval runs must end inside the uint32 interval range")
    return key_data, firsts, counts


def _run(
    key_data: U8Array,
    firsts: I64Array,
    counts: I64Array,
    table: U8Array,
    shift: int,
    backend: str | None,
) -> tuple[I64Array, U8Array]:
    chosen = choose_backend(key_data.shape[0], backend)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, RPI_LENGTH), dtype=np.uint8)
    padded, rel_first = _padded_runs(firsts, counts)
    if chosen == BACKEND_NUMBA:
        return _numba_candidates(key_data, rel_first, counts, padded, table, shift)
    out = np.empty((total, RPI_LENGTH), dtype=np.uint8)
    flat = key_data.tobytes()
    teks = [flat[i : i + TEK_LENGTH] for i in range(0, len(flat), TEK_LENGTH)]
    if chosen == BACKEND_OPENSSL:
        lib = _libcrypto()
        if lib is None:
            raise InvalidInput("the openssl backend is unavailable: libcrypto could not be loaded")
        _openssl_fill(lib, out, teks, rel_first.tolist(), counts.tolist(), padded)
    else:
        _cryptography_fill(out, teks, rel_first.tolist(), counts.tolist(), padded)
    if table is _EVERYTHING:
        return np.arange(total, dtype=np.int64), out
    slot = out.view("<u8")[:, 0] >> np.uint64(shift)
    hit = (
        table[(slot >> np.uint64(3)).astype(np.intp)] >> (slot & np.uint64(7)).astype(np.uint8)
    ) & 1
    positions = np.flatnonzero(hit).astype(np.int64)
    return positions, out[positions]


def _padded_runs(firsts: I64Array, counts: I64Array) -> tuple[bytes, I64Array]:
    """PaddedData covering every run, and where each run starts in it (in blocks)."""
    base = int(firsts.min())
    span = int((firsts + counts).max()) - base
    total = int(counts.sum())
    if span <= max(_SHARED_SPAN_BLOCKS, total):
        # Keys of a few days share one run of blocks (a national day: 144 blocks in all).
        return padded_blocks(base, span), firsts - base
    starts = np.cumsum(counts) - counts
    enins = np.repeat(firsts - starts, counts) + np.arange(total, dtype=np.int64)
    return padded_data(enins), starts


# --- Backend: cryptography (reference) -------------------------------------------------


def _cryptography_fill(
    out: U8Array, teks: Sequence[bytes], rel_first: list[int], counts: list[int], padded: bytes
) -> None:
    flat = out.reshape(-1)
    position = 0
    view = memoryview(padded)
    for tek, start, n in zip(teks, rel_first, counts, strict=True):
        encryptor = Cipher(algorithms.AES(rpik_fast(tek)), modes.ECB()).encryptor()  # noqa: S305 - the EN spec's single-block PRF
        size = n * RPI_LENGTH
        block = encryptor.update(view[start * RPI_LENGTH : start * RPI_LENGTH + size])
        flat[position : position + size] = np.frombuffer(block, dtype=np.uint8)
        position += size


# --- Backend: libcrypto through ctypes -------------------------------------------------


class _LibCrypto:
    """The few libcrypto entry points the fast backends need, typed for ctypes."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp = ctypes.c_void_p
        self.ctx_new = _bind(lib, "EVP_CIPHER_CTX_new", vp, [])
        self.ctx_free = _bind(lib, "EVP_CIPHER_CTX_free", None, [vp])
        self.aes_128_ecb = _bind(lib, "EVP_aes_128_ecb", vp, [])
        # Void pointers throughout: ctypes hands one function object per name, so the ctypes
        # callers and the numba kernel must share one signature.
        self.init = _bind(lib, "EVP_EncryptInit_ex", ctypes.c_int, [vp, vp, vp, vp, vp])
        self.update = _bind(lib, "EVP_EncryptUpdate", ctypes.c_int, [vp, vp, vp, vp, ctypes.c_int])
        self.set_padding = _bind(
            lib, "EVP_CIPHER_CTX_set_padding", ctypes.c_int, [vp, ctypes.c_int]
        )
        # Low-level SHA-256 (deprecated in OpenSSL 3, still exported); absent means no numba path.
        try:
            self.sha_init: Any = _bind(lib, "SHA256_Init", ctypes.c_int, [vp])
            self.sha_update: Any = _bind(
                lib, "SHA256_Update", ctypes.c_int, [vp, vp, ctypes.c_size_t]
            )
            self.sha_final: Any = _bind(lib, "SHA256_Final", ctypes.c_int, [vp, vp])
        except AttributeError:
            self.sha_init = self.sha_update = self.sha_final = None

    def new_ecb_context(self) -> int:
        """A fresh AES-128-ECB encryption context without padding; free it with ``ctx_free``."""
        ctx = self.ctx_new()
        if not ctx:
            raise InvalidInput("EVP_CIPHER_CTX_new failed")
        if self.init(ctx, self.aes_128_ecb(), None, bytes(16), None) != 1:
            self.ctx_free(ctx)
            raise InvalidInput("EVP_EncryptInit_ex failed")
        self.set_padding(ctx, 0)
        return int(ctx)


def _bind(lib: ctypes.CDLL, name: str, restype: Any, argtypes: list[Any]) -> Any:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = argtypes
    return function


_lib_lock = threading.Lock()
_lib_state: list[_LibCrypto | None] = []


def _libcrypto() -> _LibCrypto | None:
    """Load libcrypto once; None when absent, incomplete or failing the official-vector self-test."""
    with _lib_lock:
        if not _lib_state:
            _lib_state.append(_load_and_check())
        return _lib_state[0]


def _loadable_libcryptos() -> Iterator[_LibCrypto]:
    """Each libcrypto found by name that has the symbols we call, not yet self-tested."""
    for name in _LIBCRYPTO_NAMES:
        try:
            yield _LibCrypto(ctypes.CDLL(name))
        except (OSError, AttributeError):
            continue


def _load_and_check() -> _LibCrypto | None:
    for lib in _loadable_libcryptos():
        out = np.empty((144, RPI_LENGTH), dtype=np.uint8)
        padded = padded_blocks(_SELF_TEST_START, 144)
        try:
            _openssl_fill(lib, out, [_SELF_TEST_TEK], [0], [144], padded)
        except InvalidInput:
            continue
        if out[0].tobytes() == _SELF_TEST_RPI0 and out[143].tobytes() == _SELF_TEST_RPI143:
            return lib
    return None


def _openssl_fill(
    lib: _LibCrypto,
    out: U8Array,
    teks: Sequence[bytes],
    rel_first: list[int],
    counts: list[int],
    padded: bytes,
) -> None:
    padded_buffer = ctypes.create_string_buffer(padded, len(padded))
    padded_addr = ctypes.addressof(padded_buffer)
    ctx = lib.new_ecb_context()
    try:
        written = ctypes.c_int(0)
        written_ref = ctypes.byref(written)
        init, update = lib.init, lib.update
        out_addr = out.ctypes.data
        failed = 0
        for tek, start, n in zip(teks, rel_first, counts, strict=True):
            size = n * RPI_LENGTH
            failed |= init(ctx, None, None, rpik_fast(tek), None) ^ 1
            failed |= update(ctx, out_addr, written_ref, padded_addr + start * RPI_LENGTH, size) ^ 1
            failed |= written.value ^ size
            out_addr += size
        if failed:
            raise InvalidInput("libcrypto AES-ECB failed")
    finally:
        lib.ctx_free(ctx)


# --- Backend: numba over libcrypto -----------------------------------------------------

_numba_lock = threading.Lock()
_numba_state: list[tuple[Any, U8Array, U8Array] | None] = []


def numba_compiled() -> bool:
    """Whether this process has already compiled the numba kernel (cheap: never compiles)."""
    return bool(_numba_state) and _numba_state[0] is not None


def _numba_kernel() -> tuple[Any, U8Array, U8Array] | None:
    """(compiled kernel, SHA-256 state after the zero-salt ipad, after the opad), or None without numba."""
    with _numba_lock:
        if not _numba_state:
            _numba_state.append(_build_numba_kernel())
        return _numba_state[0]


def _build_numba_kernel() -> tuple[Any, U8Array, U8Array] | None:
    lib = _libcrypto()
    if lib is None or lib.sha_init is None or sys.byteorder != "little":
        return None
    try:
        numba = importlib.import_module("numba")
    except ImportError:
        return None
    states = []
    for pad in (0x36, 0x5C):
        state = np.zeros(_SHA256_STATE_BYTES, dtype=np.uint8)
        block = bytes([pad]) * _SHA256_BLOCK
        if (
            lib.sha_init(state.ctypes.data) != 1
            or lib.sha_update(state.ctypes.data, block, len(block)) != 1
        ):
            return None
        states.append(state)
    # cache=False: the ctypes entry points are baked in as addresses valid in this process only.
    kernel = numba.njit(nogil=True, cache=False)(
        _make_kernel(lib.sha_init, lib.sha_update, lib.sha_final, lib.init, lib.update)
    )
    result = (kernel, states[0], states[1])
    # Compile and prove it on the official vector before trusting it.
    key = np.frombuffer(_SELF_TEST_TEK, dtype=np.uint8).reshape(1, TEK_LENGTH).copy()
    padded = padded_blocks(_SELF_TEST_START, 144)
    try:
        _, rpis = _numba_with(
            lib,
            result,
            key,
            np.zeros(1, np.int64),
            np.full(1, 144, np.int64),
            padded,
            _EVERYTHING,
            _EVERYTHING_SHIFT,
        )
    except Exception:  # noqa: BLE001 - any numba or compile failure falls back to the exact openssl path
        return None
    if (
        rpis.shape[0] != 144
        or rpis[0].tobytes() != _SELF_TEST_RPI0
        or rpis[143].tobytes() != _SELF_TEST_RPI143
    ):
        return None
    return result


_SHA256_STATE_BYTES: Final = 128
"""Room for OpenSSL's SHA256_CTX (112 bytes on every platform it supports)."""
_RPIK_EXPAND_ARRAY: Final = np.frombuffer(_RPIK_EXPAND, dtype=np.uint8).copy()


def _make_kernel(
    sha_init: Any, sha_update: Any, sha_final: Any, evp_init: Any, evp_update: Any
) -> Any:
    """The loop numba compiles: HKDF (RFC 5869, one block) by SHA-256 calls, AES-ECB, prefix test."""

    def kernel(  # type: ignore[no-untyped-def]
        ctx, teks, rel_first, counts, padded, table, shift, inner0, outer0, info, cand_pos, cand_rpi
    ):
        state = np.empty(inner0.shape[0], np.uint8)
        digest = np.empty(32, np.uint8)
        expand_in = np.empty(72, np.uint8)
        final_in = np.empty(96, np.uint8)
        written = np.zeros(1, np.int32)
        longest = 1
        for i in range(counts.shape[0]):
            longest = max(longest, counts[i])
        scratch = np.empty(longest * 16, np.uint8)
        words = scratch.view(np.uint64)
        ushift = np.uint64(shift)
        three = np.uint64(3)
        seven = np.uint64(7)
        for j in range(32, 64):
            expand_in[j] = 0x36
            final_in[j] = 0x5C
        expand_in[64:72] = info
        found = 0
        position = 0
        failed = 0
        for i in range(teks.shape[0]):
            # PRK = HMAC(zeros32, TEK): the pad blocks are pre-absorbed in inner0/outer0.
            state[:] = inner0
            failed |= sha_update(state.ctypes, teks[i].ctypes, 16) ^ 1
            failed |= sha_final(digest.ctypes, state.ctypes) ^ 1
            state[:] = outer0
            failed |= sha_update(state.ctypes, digest.ctypes, 32) ^ 1
            failed |= sha_final(digest.ctypes, state.ctypes) ^ 1
            # RPIK = HMAC(PRK, 'EN-RPIK' || 0x01)[:16].
            for j in range(32):
                expand_in[j] = digest[j] ^ 0x36
                final_in[j] = digest[j] ^ 0x5C
            failed |= sha_init(state.ctypes) ^ 1
            failed |= sha_update(state.ctypes, expand_in.ctypes, 72) ^ 1
            failed |= sha_final(digest.ctypes, state.ctypes) ^ 1
            final_in[64:96] = digest
            failed |= sha_init(state.ctypes) ^ 1
            failed |= sha_update(state.ctypes, final_in.ctypes, 96) ^ 1
            failed |= sha_final(digest.ctypes, state.ctypes) ^ 1
            n = counts[i]
            failed |= evp_init(ctx, 0, 0, digest.ctypes, 0) ^ 1
            start = rel_first[i] * 16
            failed |= (
                evp_update(ctx, scratch.ctypes, written.ctypes, padded[start:].ctypes, n * 16) ^ 1
            )
            failed |= written[0] ^ (n * 16)
            for r in range(n):
                slot = words[2 * r] >> ushift
                if (table[slot >> three] >> (slot & seven)) & 1:
                    cand_pos[found] = position + r
                    cand_rpi[found, :] = scratch[16 * r : 16 * r + 16]
                    found += 1
            position += n
        return found, failed

    return kernel


def _numba_candidates(
    key_data: U8Array,
    rel_first: I64Array,
    counts: I64Array,
    padded: bytes,
    table: U8Array,
    shift: int,
) -> tuple[I64Array, U8Array]:
    compiled = _numba_kernel()
    lib = _libcrypto()
    if compiled is None or lib is None:
        raise InvalidInput("the numba backend is unavailable: numba or libcrypto missing")
    return _numba_with(lib, compiled, key_data, rel_first, counts, padded, table, shift)


def _numba_with(
    lib: _LibCrypto,
    compiled: tuple[Any, U8Array, U8Array],
    key_data: U8Array,
    rel_first: I64Array,
    counts: I64Array,
    padded: bytes,
    table: U8Array,
    shift: int,
) -> tuple[I64Array, U8Array]:
    kernel, inner0, outer0 = compiled
    total = int(counts.sum())
    # Worst case every RPI is a candidate; np.empty leaves untouched pages unallocated.
    cand_pos = np.empty(total, dtype=np.int64)
    cand_rpi = np.empty((total, RPI_LENGTH), dtype=np.uint8)
    padded_array = np.frombuffer(bytearray(padded), dtype=np.uint8)
    ctx = lib.new_ecb_context()
    try:
        found, failed = kernel(
            ctx,
            # Writable C arrays only, so numba compiles a single signature.
            np.require(key_data, np.uint8, ["C", "W"]),
            np.require(rel_first, np.int64, ["C", "W"]),
            np.require(counts, np.int64, ["C", "W"]),
            padded_array,
            np.require(table, np.uint8, ["C", "W"]),
            shift,
            inner0,
            outer0,
            _RPIK_EXPAND_ARRAY,
            cand_pos,
            cand_rpi,
        )
    finally:
        lib.ctx_free(ctx)
    if failed:
        raise InvalidInput("libcrypto SHA-256 or AES-ECB failed")
    return cand_pos[:found].copy(), cand_rpi[:found].copy()
