"""Diagnosis-key export files (protocol.md §5): read, verify and write them, bytes in, values out.

Pure: no file I/O, no clock. Every way a hostile file can fail surfaces as
:class:`~bluezoned.errors.KeyFileRejected` with its own reason; nothing else escapes the readers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Final, cast, overload

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import message as pb_message

from bluezoned.const import (
    ECDSA_P256_SHA256_ALIASES,
    ECDSA_P256_SHA256_OID,
    ECDSA_SHA512_OID,
    EXPORT_BIN_NAME,
    EXPORT_HEADER,
    EXPORT_SIG_NAME,
    MAX_EXPORT_BIN_BYTES,
    MAX_EXPORT_SIG_BYTES,
    TEK_LENGTH,
    TEK_ROLLING_PERIOD,
)
from bluezoned.errors import InvalidInput, KeyFileRejected, KeyFileRejectReason
from bluezoned.exposure.proto import export_pb2 as pb
from bluezoned.models import DiagnosisKey, ReportType

__all__ = [
    "KeyExport",
    "Signer",
    "SignerInfo",
    "TrustedKey",
    "VerifiedExport",
    "load_signer",
    "load_trusted_key",
    "parse_export_bin",
    "read_export_archive",
    "read_export_archive_unverified",
    "verify_export",
    "write_export_archive",
]

Reason = KeyFileRejectReason

MAX_BATCH_SIZE: Final = 1_000_000
"""Google's upper bound on ``batch_size`` (protocol.md §5.4, internals SignatureVerifier)."""
KEY_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_]+")
"""Characters allowed in a verification key id and version (protocol.md §5.2, SignatureInfo)."""
ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
"""Member timestamp of written archives: the zip epoch, so equal input gives equal bytes."""
_READ_CHUNK: Final = 64 * 1024
_INT32_MAX: Final = 2**31 - 1
_UINT64_MAX: Final = 2**64 - 1
_SUPPORTED_COMPRESSION: Final = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
"""Every real export is deflated; refusing bzip2/lzma keeps two more decoders off hostile input."""

# zipfile reports damage through many built-in types (struct.error for short headers,
# zlib.error for bad streams, EOFError, OSError...); all of them mean "damaged archive".
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
)
# upb raises DecodeError, but a proto2 string with invalid UTF-8 or an absurd value can
# surface as other built-ins depending on the runtime in use.
_PROTOBUF_ERRORS: Final = (pb_message.Error, ValueError, RuntimeError, OverflowError, TypeError)

_REPORT_TYPES: Final = tuple(ReportType)
DECODE_BLOCK_KEYS: Final = 1 << 16
"""Keys decoded per block: 65,536 keys' transient objects are a few MB."""
"""ReportType by value; proto2's closed enum guarantees every parsed value is in range."""

_HASH_FOR_ALGORITHM: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    ECDSA_P256_SHA256_OID: hashes.SHA256,
    **dict.fromkeys(ECDSA_P256_SHA256_ALIASES, hashes.SHA256),
    ECDSA_SHA512_OID: hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A configured verification key; a ``None`` id or version matches any signer's value."""

    key_id: str | None
    key_version: str | None
    public_key: ec.EllipticCurvePublicKey

    def __post_init__(self) -> None:
        """Refuse malformed ids/versions and keys not on P-256."""
        _check_binding(
            self.key_id,
            self.key_version,
            self.public_key,
            ec.EllipticCurvePublicKey,
            "a trusted key must be an ECDSA P-256 public key",
        )

    def matches(self, signer: SignerInfo) -> bool:
        """True when this key may verify a signature made by ``signer``."""
        return (self.key_id is None or self.key_id == signer.key_id) and (
            self.key_version is None or self.key_version == signer.key_version
        )


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """A SignatureInfo as found in a file: ``None`` for an absent or empty id/version."""

    key_id: str | None
    key_version: str | None
    algorithm: str

    def describe(self) -> str:
        """Human text naming the signer, e.g. ``key id '310' version 'v1'``."""
        key_id = repr(self.key_id) if self.key_id is not None else "(none)"
        version = repr(self.key_version) if self.key_version is not None else "(none)"
        return f"key id {key_id} version {version}"


class PublishedKeys(Sequence[DiagnosisKey]):
    """An export's validated keys as columns; each :class:`DiagnosisKey` is built when read.

    A national day holds a million keys. The matcher needs only their bytes, first interval
    and period (``key_data`` (N, 16) uint8, ``rolling_start``, ``rolling_period``), and the
    whole key of the few it matches: building a million objects up front was most of the
    parse time. Compares equal to any sequence of the same keys.
    """

    __slots__ = ("_offsets", "_parts", "key_data", "rolling_period", "rolling_start")

    def __init__(
        self,
        parts: tuple[Sequence[pb.TemporaryExposureKey], ...],
        key_data: npt.NDArray[np.uint8],
        rolling_start: npt.NDArray[np.int64],
        rolling_period: npt.NDArray[np.int64],
    ) -> None:
        self._parts = parts
        self._offsets = np.cumsum([0, *(len(part) for part in parts)])
        for column in (key_data, rolling_start, rolling_period):
            column.flags.writeable = False  # the columns must keep agreeing with the messages
        self.key_data = key_data
        self.rolling_start = rolling_start
        self.rolling_period = rolling_period

    @classmethod
    def concat(cls, *many: PublishedKeys) -> PublishedKeys:
        """The keys of several exports (or of keys and revised keys) as one sequence."""
        return cls(
            tuple(part for keys in many for part in keys._parts),
            np.concatenate([keys.key_data for keys in many]).reshape(-1, TEK_LENGTH),
            np.concatenate([keys.rolling_start for keys in many]).astype(np.int64),
            np.concatenate([keys.rolling_period for keys in many]).astype(np.int64),
        )

    def __len__(self) -> int:
        """Number of keys."""
        return int(self._offsets[-1])

    @overload
    def __getitem__(self, index: int) -> DiagnosisKey: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[DiagnosisKey, ...]: ...
    def __getitem__(self, index: int | slice) -> DiagnosisKey | tuple[DiagnosisKey, ...]:
        """The key at ``index`` (or the keys of a slice), decoded now."""
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"key {index} of {n}")
        index %= n
        part = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return _decode_key(self._parts[part][index - int(self._offsets[part])])

    def __iter__(self) -> Iterator[DiagnosisKey]:
        """Every key, decoded in order."""
        for part in self._parts:
            for key in part:
                yield _decode_key(key)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same keys in the same order."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        """The hash of the tuple of its keys."""
        return hash(tuple(self))

    def __repr__(self) -> str:
        """Short: a million keys are not printed."""
        return f"PublishedKeys({len(self)} keys)"


def all_keys(export: KeyExport) -> Sequence[DiagnosisKey]:
    """The export's keys then its revised keys, as one sequence (columns kept when parsed)."""
    if isinstance(export.keys, PublishedKeys) and isinstance(export.revised_keys, PublishedKeys):
        return PublishedKeys.concat(export.keys, export.revised_keys)
    return (*export.keys, *export.revised_keys)


@dataclass(frozen=True, slots=True)
class KeyExport:
    """The content of one export.bin; optional header fields absent from the file are ``None``."""

    region: str | None
    batch_num: int | None
    batch_size: int | None
    start_timestamp: int | None
    end_timestamp: int | None
    keys: Sequence[DiagnosisKey]
    revised_keys: Sequence[DiagnosisKey]
    """A :class:`PublishedKeys` when parsed from a file (any sequence when written)."""
    signature_infos: tuple[SignerInfo, ...]


@dataclass(frozen=True, slots=True)
class VerifiedExport:
    """An export whose signature verified with ``signer``'s configured key.

    ``sha256`` is the hex digest of the file as received (the archive, or export.bin when it
    came without a zip) and is what de-duplication keys on; ``bin_sha256`` is export.bin's. Both
    are computed when asked for: a caller that already hashed the file (the sync worker, to skip
    duplicates before verifying) does not pay for it twice.
    """

    export: KeyExport
    signer: SignerInfo
    file_bytes: bytes = field(repr=False)
    bin_bytes: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the file as received."""
        return _sha256(self.file_bytes)

    @property
    def bin_sha256(self) -> str:
        """Hex SHA-256 of export.bin."""
        return _sha256(self.bin_bytes)


@dataclass(frozen=True, slots=True)
class Signer:
    """A private key that signs exports under ``key_id`` / ``key_version`` (ECDSA P-256 SHA-256)."""

    private_key: ec.EllipticCurvePrivateKey
    key_id: str
    key_version: str

    def __post_init__(self) -> None:
        """Refuse malformed ids/versions and keys not on P-256."""
        _check_binding(
            self.key_id,
            self.key_version,
            self.private_key,
            ec.EllipticCurvePrivateKey,
            "a signer must hold an ECDSA P-256 private key",
        )


# --- public API: reading ------------------------------------------------------------------


def load_trusted_key(
    pem_bytes: bytes, key_id: str | None = None, key_version: str | None = None
) -> TrustedKey:
    """Parse a P-256 public key (PEM, or bare base64 SubjectPublicKeyInfo) or raise InvalidInput."""
    text = pem_bytes.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            # Health authorities publish keys as one base64 line (protocol.md §5.4).
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise InvalidInput(f"not a PEM or base64 public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the public key is not an ECDSA P-256 key")
    return TrustedKey(key_id=key_id, key_version=key_version, public_key=key)


def load_signer(pem_bytes: bytes, key_id: str, key_version: str) -> Signer:
    """Parse an unencrypted PEM (PKCS#8 or SEC1) P-256 private key into a Signer, or raise InvalidInput."""
    try:
        key = serialization.load_pem_private_key(pem_bytes, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the signing key is not an ECDSA P-256 key")
    return Signer(private_key=key, key_id=key_id, key_version=key_version)


def read_export_archive(
    data: bytes,
    trusted: Sequence[TrustedKey],
    *,
    max_bin_bytes: int = MAX_EXPORT_BIN_BYTES,
    max_sig_bytes: int = MAX_EXPORT_SIG_BYTES,
) -> VerifiedExport:
    """Check, verify and parse a zip of export.bin + export.sig, or raise KeyFileRejected.

    Order (protocol.md §5.5): exact members within their bounds, header, signature over the
    whole export.bin against ``trusted``, and only then the keys.
    """
    members = _open_archive(
        data, max_bin_bytes=max_bin_bytes, max_sig_bytes=max_sig_bytes, require_sig=True
    )
    export_bin = members[EXPORT_BIN_NAME]
    export_sig = members[EXPORT_SIG_NAME]
    return _verify(export_bin, export_sig, trusted, file_bytes=data)


def verify_export(
    export_bin: bytes,
    export_sig: bytes,
    trusted: Sequence[TrustedKey],
    *,
    max_bin_bytes: int = MAX_EXPORT_BIN_BYTES,
    max_sig_bytes: int = MAX_EXPORT_SIG_BYTES,
) -> VerifiedExport:
    """Verify and parse an export.bin shipped beside its export.sig, or raise KeyFileRejected."""
    _check_size(EXPORT_BIN_NAME, len(export_bin), max_bin_bytes)
    _check_size(EXPORT_SIG_NAME, len(export_sig), max_sig_bytes)
    return _verify(export_bin, export_sig, trusted, file_bytes=export_bin)


def parse_export_bin(export_bin: bytes) -> KeyExport:
    """Check the header and parse an export.bin WITHOUT verifying it, or raise KeyFileRejected."""
    _check_header(export_bin)
    return _parse_body(export_bin)


def read_export_archive_unverified(
    data: bytes,
    *,
    max_bin_bytes: int = MAX_EXPORT_BIN_BYTES,
    max_sig_bytes: int = MAX_EXPORT_SIG_BYTES,
) -> KeyExport:
    """Parse a zip with the strict container checks but WITHOUT verifying; export.sig optional."""
    members = _open_archive(
        data, max_bin_bytes=max_bin_bytes, max_sig_bytes=max_sig_bytes, require_sig=False
    )
    return parse_export_bin(members[EXPORT_BIN_NAME])


# --- public API: writing ------------------------------------------------------------------


def write_export_archive(
    keys: Sequence[DiagnosisKey],
    *,
    region: str,
    start_timestamp: int,
    end_timestamp: int,
    signers: Sequence[Signer],
    batch_num: int = 1,
    batch_size: int = 1,
    revised_keys: Sequence[DiagnosisKey] = (),
) -> bytes:
    """Build a signed export zip as ens does (keys sorted, period 144 omitted); InvalidInput on bad input.

    With no signers export.sig is empty, which every reader refuses as UNSIGNED.
    """
    if not 0 <= start_timestamp <= end_timestamp <= _UINT64_MAX:
        raise InvalidInput("timestamps must satisfy 0 <= start_timestamp <= end_timestamp < 2**64")
    if not 1 <= batch_num <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"need 1 <= batch_num <= batch_size <= {MAX_BATCH_SIZE}")
    try:
        region.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"region {region!r} is not encodable as UTF-8") from exc
    key_ids = [(signer.key_id, signer.key_version) for signer in signers]
    if len(set(key_ids)) != len(key_ids):
        raise InvalidInput("two signers share one key id and version")
    infos = [
        pb.SignatureInfo(
            verification_key_id=signer.key_id,
            verification_key_version=signer.key_version,
            signature_algorithm=ECDSA_P256_SHA256_OID,
        )
        for signer in signers
    ]
    body = pb.TemporaryExposureKeyExport(
        start_timestamp=start_timestamp,
        end_timestamp=end_timestamp,
        region=region,
        batch_num=batch_num,
        batch_size=batch_size,
        signature_infos=infos,
        keys=_encode_keys(keys, "keys"),
        revised_keys=_encode_keys(revised_keys, "revised_keys"),
    )
    export_bin = EXPORT_HEADER + body.SerializeToString(deterministic=True)
    signatures = pb.TEKSignatureList(
        signatures=[
            pb.TEKSignature(
                signature_info=info,
                batch_num=batch_num,
                batch_size=batch_size,
                signature=_sign(signer.private_key, export_bin),
            )
            for signer, info in zip(signers, infos, strict=True)
        ]
    )
    export_sig = signatures.SerializeToString(deterministic=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in ((EXPORT_BIN_NAME, export_bin), (EXPORT_SIG_NAME, export_sig)):
            member = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.create_system = 3
            member.external_attr = 0o100644 << 16
            archive.writestr(member, content)
    return buffer.getvalue()


# --- container -----------------------------------------------------------------------------


def _open_archive(
    data: bytes, *, max_bin_bytes: int, max_sig_bytes: int, require_sig: bool
) -> dict[str, bytes]:
    """The bounded contents of export.bin and (if present) export.sig of a zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        detail = str(exc)
        if data.startswith(EXPORT_HEADER):
            detail = "this is a bare export.bin; its export.sig must be given separately"
        raise KeyFileRejected(Reason.NOT_A_ZIP, detail) from exc
    with archive:
        by_name = _check_members(archive.infolist(), require_sig=require_sig)
        bounds = {EXPORT_BIN_NAME: max_bin_bytes, EXPORT_SIG_NAME: max_sig_bytes}
        # Every declared size is checked before anything is inflated.
        for name, info in by_name.items():
            _check_size(name, info.file_size, bounds[name])
            if info.compress_type not in _SUPPORTED_COMPRESSION:
                raise KeyFileRejected(
                    Reason.CORRUPT_ZIP,
                    f"{name}: unsupported compression method {info.compress_type}",
                )
            if info.flag_bits & 0x1:
                raise KeyFileRejected(Reason.CORRUPT_ZIP, f"{name}: encrypted member")
        return {name: _read_member(archive, info, bounds[name]) for name, info in by_name.items()}


def _check_members(
    infos: Iterable[zipfile.ZipInfo], *, require_sig: bool
) -> dict[str, zipfile.ZipInfo]:
    """Exactly one export.bin and one export.sig (optional when unverified), nothing else."""
    infos = list(infos)
    counts = Counter(info.filename for info in infos)
    allowed = {EXPORT_BIN_NAME, EXPORT_SIG_NAME}
    extra = sorted(name for name in counts if name not in allowed)
    duplicated = sorted(name for name in allowed if counts[name] > 1)
    if extra or duplicated:
        names = [repr(name) for name in extra] + [f"{name!r} (duplicated)" for name in duplicated]
        raise KeyFileRejected(Reason.EXTRA_MEMBER, ", ".join(names))
    required = [EXPORT_BIN_NAME, EXPORT_SIG_NAME] if require_sig else [EXPORT_BIN_NAME]
    missing = [name for name in required if name not in counts]
    if missing:
        raise KeyFileRejected(Reason.MISSING_MEMBER, ", ".join(missing))
    return {info.filename: info for info in infos}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, bound: int) -> bytes:
    """Inflate one member, never producing more than ``bound + 1`` bytes, CRC checked."""
    try:
        with archive.open(info) as stream:
            content = _read_bounded(stream, bound)
    except _ZIP_ERRORS as exc:
        raise KeyFileRejected(Reason.CORRUPT_ZIP, f"{info.filename}: {exc}") from exc
    _check_size(info.filename, len(content), bound)
    return content


def _read_bounded(stream: IO[bytes], bound: int) -> bytes:
    """Read at most ``bound + 1`` bytes in chunks, so a lying size header cannot blow memory."""
    chunks: list[bytes] = []
    total = 0
    while total <= bound:
        chunk = stream.read(min(_READ_CHUNK, bound + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _check_size(name: str, size: int, bound: int) -> None:
    """Refuse a member (declared or actual) above its bound."""
    if size > bound:
        raise KeyFileRejected(Reason.TOO_LARGE, f"{name} is {size} bytes, the bound is {bound}")


def _check_header(export_bin: bytes) -> None:
    """Refuse an export.bin that does not start with the 16-byte ``EK Export v1`` header."""
    if not export_bin.startswith(EXPORT_HEADER):
        raise KeyFileRejected(Reason.BAD_HEADER, f"starts with {export_bin[:16]!r}")


# --- signature -----------------------------------------------------------------------------


def _verify(
    export_bin: bytes, export_sig: bytes, trusted: Sequence[TrustedKey], *, file_bytes: bytes
) -> VerifiedExport:
    """Header, then signature over the whole export.bin, then parse and cross-check."""
    _check_header(export_bin)
    signatures = _parse_signatures(export_sig)
    signer = _check_signatures(export_bin, signatures, trusted)
    export = _parse_body(export_bin)
    if len(export.signature_infos) != len(signatures):
        # Only the count is compared: the 2020-05-19 Google sample names version "v1" in
        # export.sig but carries a SignatureInfo with only reserved fields in export.bin.
        raise KeyFileRejected(
            Reason.SIGNATURE_MISMATCH,
            f"export.sig has {len(signatures)} signature(s), "
            f"export.bin lists {len(export.signature_infos)}",
        )
    return VerifiedExport(export=export, signer=signer, file_bytes=file_bytes, bin_bytes=export_bin)


def _parse_signatures(export_sig: bytes) -> list[tuple[SignerInfo, bytes]]:
    """(signer, DER signature) for each TEKSignature; UNSIGNED when there is none."""
    message = pb.TEKSignatureList()
    try:
        message.ParseFromString(export_sig)
        result = [
            (_signer_info(item.signature_info), item.signature) for item in message.signatures
        ]
    except _PROTOBUF_ERRORS as exc:
        raise KeyFileRejected(Reason.MALFORMED_PROTOBUF, f"export.sig: {exc}") from exc
    if not result:
        raise KeyFileRejected(Reason.UNSIGNED, "export.sig holds no signature")
    return result


def _check_signatures(
    export_bin: bytes, signatures: Sequence[tuple[SignerInfo, bytes]], trusted: Sequence[TrustedKey]
) -> SignerInfo:
    """The first signer whose configured key verifies; a failing checked signature refuses.

    A key bound to a key id that fails its signer's signature refuses the file at once. A
    wildcard key (no id) that fails is only held against the file when no signature
    verifies: it was never configured for that particular signer of a co-signed file.
    """
    algorithms = []
    for index, (signer, _) in enumerate(signatures):
        algorithm = _HASH_FOR_ALGORITHM.get(signer.algorithm)
        if algorithm is None:
            raise KeyFileRejected(
                Reason.UNKNOWN_ALGORITHM, f"{signer.algorithm!r} in signature {index}"
            )
        algorithms.append(algorithm)
    verified: list[SignerInfo] = []
    failed: list[SignerInfo] = []
    skipped: list[SignerInfo] = []
    for (signer, der), algorithm in zip(signatures, algorithms, strict=True):
        # Google: a signature without a key id counts only when it is the only one.
        if signer.key_id is None and len(signatures) > 1:
            skipped.append(signer)
            continue
        candidates = [key for key in trusted if key.matches(signer)]
        if not candidates:
            skipped.append(signer)
        elif any(_ecdsa_ok(key, der, export_bin, algorithm()) for key in candidates):
            verified.append(signer)
        elif any(key.key_id is not None for key in candidates):
            raise KeyFileRejected(Reason.BAD_SIGNATURE, f"signed by {signer.describe()}")
        else:
            failed.append(signer)
    if verified:
        return verified[0]
    if failed:
        names = "; ".join(signer.describe() for signer in failed)
        raise KeyFileRejected(Reason.BAD_SIGNATURE, f"signed by {names}")
    names = "; ".join(signer.describe() for signer in skipped)
    raise KeyFileRejected(Reason.NO_KEY, f"signed by {names}")


def _sign(private_key: ec.EllipticCurvePrivateKey, export_bin: bytes) -> bytes:
    """DER ECDSA P-256 SHA-256 over the whole export.bin."""
    try:
        # RFC 6979 nonces: the same input always gives the same archive bytes.
        return private_key.sign(export_bin, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    except UnsupportedAlgorithm:  # OpenSSL older than 3.2: random nonces are just as valid
        return private_key.sign(export_bin, ec.ECDSA(hashes.SHA256()))


def _ecdsa_ok(
    key: TrustedKey, der: bytes, export_bin: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    """True when ``der`` is a valid ECDSA signature of the whole export.bin under ``key``."""
    try:
        key.public_key.verify(der, export_bin, ec.ECDSA(algorithm))
    except (InvalidSignature, ValueError):
        return False
    return True


def _signer_info(info: pb.SignatureInfo) -> SignerInfo:
    """Our SignerInfo from a protobuf one (empty strings become ``None``)."""
    return SignerInfo(
        key_id=_text(info, "verification_key_id") or None,
        key_version=_text(info, "verification_key_version") or None,
        algorithm=_text(info, "signature_algorithm") or "",
    )


# --- export.bin body -----------------------------------------------------------------------


def _parse_body(export_bin: bytes) -> KeyExport:
    """Decode the protobuf after the header and validate batch fields and keys."""
    message = pb.TemporaryExposureKeyExport()
    try:
        message.ParseFromString(memoryview(export_bin)[len(EXPORT_HEADER) :])  # no 2nd copy
        region = _text(message, "region")
        infos = tuple(_signer_info(info) for info in message.signature_infos)
        batch_num = message.batch_num if message.HasField("batch_num") else None
        batch_size = message.batch_size if message.HasField("batch_size") else None
        start = message.start_timestamp if message.HasField("start_timestamp") else None
        end = message.end_timestamp if message.HasField("end_timestamp") else None
        keys = _decode_keys(message.keys, "keys")
        revised_keys = _decode_keys(message.revised_keys, "revised_keys")
    except _PROTOBUF_ERRORS as exc:
        raise KeyFileRejected(Reason.MALFORMED_PROTOBUF, f"export.bin: {exc}") from exc
    _check_batch(batch_num, batch_size)
    return KeyExport(
        region=region,
        batch_num=batch_num,
        batch_size=batch_size,
        start_timestamp=start,
        end_timestamp=end,
        keys=keys,
        revised_keys=revised_keys,
        signature_infos=infos,
    )


def _check_batch(batch_num: int | None, batch_size: int | None) -> None:
    """Google's batch rules (protocol.md §5.4) on whichever fields are present."""
    if batch_num is not None and batch_num < 1:
        raise KeyFileRejected(Reason.BAD_BATCH, f"batch_num {batch_num} < 1")
    if batch_size is not None and not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise KeyFileRejected(
            Reason.BAD_BATCH, f"batch_size {batch_size} outside 1..{MAX_BATCH_SIZE}"
        )
    if batch_num is not None and batch_size is not None and batch_num > batch_size:
        raise KeyFileRejected(Reason.BAD_BATCH, f"batch {batch_num} of {batch_size}")


def _decode_keys(messages: Sequence[pb.TemporaryExposureKey], field: str) -> PublishedKeys:
    """Validated keys; the proto2 defaults give 144 for an absent rolling_period.

    Read in blocks of DECODE_BLOCK_KEYS so that the per-key Python objects of a million-key
    file never exist all at once.
    """
    n = len(messages)
    lengths = np.empty(n, dtype=np.int64)
    periods = np.empty(n, dtype=np.int64)
    starts = np.empty(n, dtype=np.int64)
    data = bytearray()
    for lo in range(0, n, DECODE_BLOCK_KEYS):
        block = messages[lo : lo + DECODE_BLOCK_KEYS]
        key_bytes = [key.key_data for key in block]
        hi = lo + len(block)
        # Every length is checked: a 15- and a 17-byte key would join to the right total.
        lengths[lo:hi] = np.fromiter(map(len, key_bytes), dtype=np.int64, count=hi - lo)
        periods[lo:hi] = np.fromiter(
            (key.rolling_period for key in block), dtype=np.int64, count=hi - lo
        )
        starts[lo:hi] = np.fromiter(
            (key.rolling_start_interval_number for key in block), dtype=np.int64, count=hi - lo
        )
        data += b"".join(key_bytes)
    bad = np.flatnonzero(
        (lengths != TEK_LENGTH) | (periods < 1) | (periods > TEK_ROLLING_PERIOD) | (starts < 0)
    )
    if bad.size:
        index = int(bad[0])
        if lengths[index] != TEK_LENGTH:
            raise KeyFileRejected(
                Reason.BAD_KEY_LENGTH, f"{field}[{index}] has {lengths[index]} bytes"
            )
        if not 1 <= periods[index] <= TEK_ROLLING_PERIOD:
            raise KeyFileRejected(
                Reason.BAD_ROLLING_PERIOD, f"{field}[{index}] has rolling_period {periods[index]}"
            )
        raise KeyFileRejected(
            Reason.BAD_ROLLING_START, f"{field}[{index}] has rolling_start {starts[index]}"
        )
    key_data = np.frombuffer(data, dtype=np.uint8).reshape(n, TEK_LENGTH)
    return PublishedKeys((messages,), key_data, starts, periods)


def _decode_key(key: pb.TemporaryExposureKey) -> DiagnosisKey:
    """One already validated key with its optional fields."""
    return DiagnosisKey(
        key_data=bytes(key.key_data),
        rolling_start=key.rolling_start_interval_number,
        rolling_period=key.rolling_period,
        transmission_risk_level=(
            key.transmission_risk_level if key.HasField("transmission_risk_level") else None
        ),
        # proto2 enums are closed: an unknown value lands in unknown fields and
        # reads as absent, which the consumer resolves by configuration (§5.3).
        report_type=_REPORT_TYPES[key.report_type] if key.HasField("report_type") else None,
        days_since_onset=(
            key.days_since_onset_of_symptoms
            if key.HasField("days_since_onset_of_symptoms")
            else None
        ),
    )


def _encode_keys(keys: Sequence[DiagnosisKey], field: str) -> list[pb.TemporaryExposureKey]:
    """Protobuf keys sorted by key bytes, optional fields only when set; InvalidInput if bad."""
    encoded = []
    for index, key in enumerate(keys):
        where = f"{field}[{index}]"
        if not isinstance(key.key_data, bytes) or len(key.key_data) != TEK_LENGTH:
            raise InvalidInput(f"{where}: key_data must be {TEK_LENGTH} bytes")
        if not 1 <= key.rolling_period <= TEK_ROLLING_PERIOD:
            raise InvalidInput(f"{where}: rolling_period {key.rolling_period} outside 1..144")
        if not 0 <= key.rolling_start <= _INT32_MAX:
            raise InvalidInput(f"{where}: rolling_start {key.rolling_start} outside int32 >= 0")
        message = pb.TemporaryExposureKey(
            key_data=key.key_data, rolling_start_interval_number=key.rolling_start
        )
        if key.rolling_period != TEK_ROLLING_PERIOD:
            message.rolling_period = key.rolling_period
        if key.transmission_risk_level is not None:
            if not 0 <= key.transmission_risk_level <= 8:
                raise InvalidInput(f"{where}: transmission_risk_level outside 0..8")
            message.transmission_risk_level = key.transmission_risk_level
        if key.report_type is not None:
            message.report_type = cast("pb.TemporaryExposureKey.ReportType", int(key.report_type))
        if key.days_since_onset is not None:
            if not -_INT32_MAX - 1 <= key.days_since_onset <= _INT32_MAX:
                raise InvalidInput(f"{where}: days_since_onset outside int32")
            message.days_since_onset_of_symptoms = key.days_since_onset
        encoded.append((key.key_data, message))
    encoded.sort(key=lambda pair: pair[0])
    return [message for _, message in encoded]


# --- small helpers --------------------------------------------------------------------------


def _text(message: pb_message.Message, field: str) -> str | None:
    """A proto2 string field, ``None`` when absent; invalid UTF-8 is malformed protobuf."""
    if not message.HasField(field):
        return None
    # upb hands back bytes, not str, for a proto2 string that is not valid UTF-8.
    value: object = getattr(message, field)
    if not isinstance(value, str):
        raise KeyFileRejected(Reason.MALFORMED_PROTOBUF, f"{field} is not valid UTF-8")
    return value


def _check_binding(
    key_id: str | None, key_version: str | None, key: object, kind: type, refusal: str
) -> None:
    """Refuse malformed ids/versions, and with ``refusal`` a key that is not ``kind`` on P-256."""
    _check_key_name(key_id, "key id")
    _check_key_name(key_version, "key version")
    if not isinstance(key, kind) or not isinstance(getattr(key, "curve", None), ec.SECP256R1):
        raise InvalidInput(refusal)


def _check_key_name(value: str | None, what: str) -> None:
    """``None`` or ``[A-Za-z0-9_]+``, else InvalidInput."""
    if value is not None and (
        not isinstance(value, str) or KEY_NAME_PATTERN.fullmatch(value) is None
    ):
        raise InvalidInput(f"{what} {value!r} must match [A-Za-z0-9_]+")


def _sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()
