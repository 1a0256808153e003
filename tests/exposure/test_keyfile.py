"""Export files: the real samples, every rejection reason, and the writer (protocol.md §5)."""

from __future__ import annotations

import hashlib
import io
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bluezoned.const import (
    ECDSA_P256_SHA256_OID,
    ECDSA_SHA512_OID,
    EXPORT_HEADER,
    MAX_EXPORT_SIG_BYTES,
)
from bluezoned.errors import InvalidInput, KeyFileRejected, KeyFileRejectReason
from bluezoned.exposure import keyfile as kf
from bluezoned.exposure.keyfile import (
    KeyExport,
    Signer,
    SignerInfo,
    TrustedKey,
    load_trusted_key,
    parse_export_bin,
    read_export_archive,
    read_export_archive_unverified,
    verify_export,
    write_export_archive,
)
from bluezoned.exposure.proto import export_pb2 as pb
from bluezoned.models import DiagnosisKey, ReportType

R = KeyFileRejectReason
MiB = 1024 * 1024

# --- helpers shared with the fuzz and CLI tests ----------------------------------------------


def make_signer(seed: int, key_id: str = "310", key_version: str = "v1") -> Signer:
    """A deterministic P-256 signer (the private scalar is ``seed``)."""
    return Signer(ec.derive_private_key(seed, ec.SECP256R1()), key_id, key_version)


def trust(signer: Signer, key_id: str | None = None, key_version: str | None = None) -> TrustedKey:
    """The public half of ``signer`` as a configured key (wildcard id/version by default)."""
    return TrustedKey(key_id, key_version, signer.private_key.public_key())


def public_pem(signer: Signer) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``signer``."""
    return signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


SIGNER = make_signer(0x1234567890ABCDEF, "310", "v1")
OTHER = make_signer(0xFEDCBA0987654321, "262", "v1")


def make_keys(count: int = 3) -> list[DiagnosisKey]:
    """Distinct valid keys with a mix of optional fields."""
    return [
        DiagnosisKey(
            key_data=hashlib.sha256(bytes([index])).digest()[:16],
            rolling_start=2_650_000 + 144 * index,
            rolling_period=144 if index % 2 else 1 + index,
            transmission_risk_level=index % 9,
            report_type=ReportType(index % 6) if index % 3 else None,
            days_since_onset=(index % 29) - 14 if index % 4 else None,
        )
        for index in range(count)
    ]


def write(
    keys: Sequence[DiagnosisKey] | None = None, signers: Sequence[Signer] = (SIGNER,)
) -> bytes:
    """A valid archive of ``keys`` (default: three) signed by ``signers``."""
    return write_export_archive(
        make_keys() if keys is None else keys,
        region="US",
        start_timestamp=1_600_000_000,
        end_timestamp=1_600_003_600,
        signers=signers,
    )


def members(archive: bytes) -> dict[str, bytes]:
    """Name -> content of a zip."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(entries: Sequence[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``entries`` in order (duplicates allowed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which we want
        with zipfile.ZipFile(buffer, "w", compression) as zf:
            for name, content in entries:
                zf.writestr(name, content)
    return buffer.getvalue()


def sign_sig(
    export_bin: bytes,
    signers: Sequence[Signer],
    *,
    algorithm: str = ECDSA_P256_SHA256_OID,
    digest: hashes.HashAlgorithm | None = None,
    key_ids: Sequence[str | None] | None = None,
) -> bytes:
    """A TEKSignatureList signing ``export_bin`` once per signer."""
    signatures = []
    for index, signer in enumerate(signers):
        key_id = signer.key_id if key_ids is None else key_ids[index]
        info = pb.SignatureInfo(
            verification_key_version=signer.key_version, signature_algorithm=algorithm
        )
        if key_id is not None:
            info.verification_key_id = key_id
        der = signer.private_key.sign(export_bin, ec.ECDSA(digest or hashes.SHA256()))
        signatures.append(
            pb.TEKSignature(signature_info=info, batch_num=1, batch_size=1, signature=der)
        )
    return bytes(pb.TEKSignatureList(signatures=signatures).SerializeToString())


def body(
    keys: Sequence[pb.TemporaryExposureKey] | None = None, infos: int = 1, **fields: object
) -> pb.TemporaryExposureKeyExport:
    """A TemporaryExposureKeyExport with valid defaults and ``infos`` signature infos."""
    if keys is None:
        keys = [
            pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=2_650_000)
        ]
    message = pb.TemporaryExposureKeyExport(
        start_timestamp=1, end_timestamp=2, region="US", batch_num=1, batch_size=1, keys=keys
    )
    for _ in range(infos):
        message.signature_infos.add(
            verification_key_id="310",
            verification_key_version="v1",
            signature_algorithm=ECDSA_P256_SHA256_OID,
        )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


def signed(
    export_bin: bytes | pb.TemporaryExposureKeyExport,
    signers: Sequence[Signer] = (SIGNER,),
    *,
    algorithm: str = ECDSA_P256_SHA256_OID,
    digest: hashes.HashAlgorithm | None = None,
    key_ids: Sequence[str | None] | None = None,
) -> bytes:
    """An archive whose export.bin (bytes, or a message given the header) is validly signed."""
    if isinstance(export_bin, pb.TemporaryExposureKeyExport):
        export_bin = EXPORT_HEADER + export_bin.SerializeToString()
    sig = sign_sig(export_bin, signers, algorithm=algorithm, digest=digest, key_ids=key_ids)
    return rezip([("export.bin", export_bin), ("export.sig", sig)])


def refused(
    call: Callable[[], object], reason: KeyFileRejectReason, detail: str = ""
) -> KeyFileRejected:
    """Run ``call``; it must raise KeyFileRejected with ``reason`` (and ``detail`` in it)."""
    with pytest.raises(KeyFileRejected) as info:
        call()
    assert info.value.reason is reason, info.value
    assert detail in info.value.detail
    return info.value


def raw_zip(entries: Sequence[tuple[str, int, int, int, bytes]]) -> bytes:
    """A zip built by hand: ``(name, method, crc, declared size, payload)`` per member."""
    out = bytearray()
    central = bytearray()
    for name, method, crc, size, payload in entries:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(payload),
            size,
            len(encoded),
            0,
        )
        out += encoded + payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(payload),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    directory_offset = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), directory_offset, 0
    )
    return bytes(out)


# --- real samples ---------------------------------------------------------------------------

INTERNALS = "exposure-notifications-internals"
SERVER = "exposure-notifications-server"

# (archive, public key, binding for a bound TrustedKey, region, keys, signer id, signer version, sha256)
VERIFYING = [
    (
        f"{INTERNALS}/sample_diagnosis_key_file.zip",
        f"{INTERNALS}/pubkey_310-v1.pem",
        ("310", "v1"),
        "US",
        140,
        "310",
        "v1",
        "837eb489b4537ca6dc39fd45940cce9fe042fbdfda1fa018f03c71f09d0ea947",
    ),
    (
        "exposure-notifications-android/sample_diagnosis_key_file_2020-05-19.zip",
        f"{INTERNALS}/pubkey_ExampleServer-v1.pem",
        (None, "v1"),
        "US",
        110,
        None,
        "v1",
        "4ba6d62c45d78661f23ad7ca12609dd7dad8a9ebbcfe73653697512ffdaaf7be",
    ),
    (
        f"{SERVER}/testExport-2-records-1-of-1.zip",
        f"{SERVER}/public.pem",
        ("some_id", "1"),
        "US",
        2,
        "some_id",
        "1",
        "084a5748ea752813e075c2420dc2521d9145b2d2b5721310cc8e364bb73698d2",
    ),
    (
        f"{SERVER}/sample-export.zip",
        f"{SERVER}/public_2020-05-15_ExampleServer.pem",
        ("ExampleServer_k1", None),
        "US",
        2,
        "ExampleServer_k1",
        None,
        "19f038611f43834ceade8cc1c4840a1b6b35aa632b8526b2640cc34539fa3a34",
    ),
]
VERIFYING_IDS = [case[0].split("/")[-1] for case in VERIFYING]
CWA_KEY = "esp-ena/pubkey_cwa_prod_262-v1.pem"


def sample_parts(root: Path, name: str) -> tuple[bytes, bytes]:
    """export.bin and export.sig of a sample, zipped or the esp-ena pair."""
    if name == "esp-ena/export_tel":
        return (root / "esp-ena/export_tel.bin").read_bytes(), (
            root / "esp-ena/export_tel.sig"
        ).read_bytes()
    parts = members((root / name).read_bytes())
    return parts["export.bin"], parts["export.sig"]


def wrong_pem(pem: str) -> str:
    """A real public key that is not ``pem``."""
    return f"{INTERNALS}/pubkey_310-v1.pem" if "310" not in pem else CWA_KEY


@pytest.mark.shared_data
@pytest.mark.parametrize("case", VERIFYING, ids=VERIFYING_IDS)
def test_real_sample_verifies_with_its_key(
    gaen_exports: Path,
    case: tuple[str, str, tuple[str | None, str | None], str, int, str | None, str | None, str],
) -> None:
    archive, pem, _, region, count, key_id, version, sha256 = case
    data = (gaen_exports / archive).read_bytes()
    result = read_export_archive(data, [load_trusted_key((gaen_exports / pem).read_bytes())])
    assert result.export.region == region
    assert len(result.export.keys) == count
    assert result.export.revised_keys == ()
    assert (result.export.batch_num, result.export.batch_size) == (1, 1)
    assert (result.signer.key_id, result.signer.key_version) == (key_id, version)
    assert result.sha256 == sha256
    assert result.bin_sha256 == hashlib.sha256(members(data)["export.bin"]).hexdigest()


@pytest.mark.shared_data
@pytest.mark.parametrize("case", VERIFYING, ids=VERIFYING_IDS)
def test_real_sample_verifies_with_key_bound_to_its_signer(
    gaen_exports: Path,
    case: tuple[str, str, tuple[str | None, str | None], str, int, str | None, str | None, str],
) -> None:
    archive, pem, (bound_id, bound_version), *_ = case
    key = load_trusted_key((gaen_exports / pem).read_bytes(), bound_id, bound_version)
    decoy = load_trusted_key((gaen_exports / wrong_pem(pem)).read_bytes(), "other", "v9")
    result = read_export_archive((gaen_exports / archive).read_bytes(), [decoy, key])
    assert key.matches(result.signer)
    assert not decoy.matches(result.signer)
    if bound_id is not None:
        assert result.signer.key_id == bound_id


@pytest.mark.shared_data
@pytest.mark.parametrize("case", VERIFYING, ids=VERIFYING_IDS)
def test_real_sample_refused_with_wrong_key(
    gaen_exports: Path,
    case: tuple[str, str, tuple[str | None, str | None], str, int, str | None, str | None, str],
) -> None:
    archive, pem, *_ = case
    data = (gaen_exports / archive).read_bytes()
    wrong = (gaen_exports / wrong_pem(pem)).read_bytes()
    refused(lambda: read_export_archive(data, [load_trusted_key(wrong)]), R.BAD_SIGNATURE)
    # The right key bound to another signer is not consulted at all: fail closed.
    right = (gaen_exports / pem).read_bytes()
    refused(lambda: read_export_archive(data, [load_trusted_key(right, "999", "v1")]), R.NO_KEY)
    refused(lambda: read_export_archive(data, []), R.NO_KEY)


@pytest.mark.shared_data
def test_google_internals_sample_is_refused_by_example_server_key(gaen_exports: Path) -> None:
    data = (gaen_exports / f"{INTERNALS}/sample_diagnosis_key_file.zip").read_bytes()
    example = (gaen_exports / f"{INTERNALS}/pubkey_ExampleServer-v1.pem").read_bytes()
    refused(lambda: read_export_archive(data, [load_trusted_key(example)]), R.BAD_SIGNATURE)
    error = refused(
        lambda: read_export_archive(data, [load_trusted_key(example, "ExampleServer", "v1")]),
        R.NO_KEY,
    )
    assert "'310'" in error.detail
    assert "'v1'" in error.detail


@pytest.mark.shared_data
def test_cwa_production_export_verifies_from_separate_files(gaen_exports: Path) -> None:
    export_bin, export_sig = sample_parts(gaen_exports, "esp-ena/export_tel")
    key = load_trusted_key((gaen_exports / CWA_KEY).read_bytes(), "262", "v1")
    result = verify_export(export_bin, export_sig, [key])
    assert result.export.region == "DE"
    assert len(result.export.keys) == 720
    assert (result.export.start_timestamp, result.export.end_timestamp) == (1595376000, 1595462400)
    assert result.signer == SignerInfo("262", "v1", ECDSA_P256_SHA256_OID)
    assert (
        result.sha256
        == result.bin_sha256
        == ("895f811a97d2312d73bbd145e33af01202a2b10ac9dcd7173952d16cac50e748")
    )
    # CWA v1 convention: TRL 1..8, no report type or onset.
    assert {key.transmission_risk_level for key in result.export.keys} <= set(range(1, 9))
    assert all(
        key.report_type is None and key.days_since_onset is None for key in result.export.keys
    )
    wrong = (gaen_exports / f"{INTERNALS}/pubkey_310-v1.pem").read_bytes()
    refused(
        lambda: verify_export(export_bin, export_sig, [load_trusted_key(wrong)]), R.BAD_SIGNATURE
    )
    refused(
        lambda: verify_export(export_bin, export_sig, [load_trusted_key(wrong, "310", "v1")]),
        R.NO_KEY,
    )


SIGNED_SAMPLES = [(case[0], case[1]) for case in VERIFYING] + [("esp-ena/export_tel", CWA_KEY)]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "pem"), SIGNED_SAMPLES, ids=[s[0].split("/")[-1] for s in SIGNED_SAMPLES]
)
def test_flipping_any_byte_of_a_real_export_bin_is_refused(
    gaen_exports: Path, name: str, pem: str
) -> None:
    export_bin, export_sig = sample_parts(gaen_exports, name)
    key = load_trusted_key((gaen_exports / pem).read_bytes())
    verify_export(export_bin, export_sig, [key])  # the unmodified file is accepted
    first_key = parse_export_bin(export_bin).keys[0].key_data
    key_offset = export_bin.index(first_key)
    positions = {
        0,
        7,
        15,
        16,
        17,
        key_offset,
        key_offset + 15,
        len(export_bin) // 2,
        len(export_bin) - 1,
    }
    for position in sorted(positions):
        for mask in (0x01, 0x80, 0xFF):
            mutated = bytearray(export_bin)
            mutated[position] ^= mask
            with pytest.raises(KeyFileRejected) as info:
                verify_export(bytes(mutated), export_sig, [key])
            expected = R.BAD_HEADER if position < len(EXPORT_HEADER) else R.BAD_SIGNATURE
            assert info.value.reason is expected, (position, mask)
    # And through a re-zipped archive.
    mutated = bytearray(export_bin)
    mutated[key_offset] ^= 1
    archive = rezip([("export.bin", bytes(mutated)), ("export.sig", export_sig)])
    refused(lambda: read_export_archive(archive, [key]), R.BAD_SIGNATURE)


@pytest.mark.shared_data
def test_unsigned_sample_is_refused_but_parses_with_v15_fields(gaen_exports: Path) -> None:
    data = (gaen_exports / f"{SERVER}/1605818700-1605819000-0001-ff23e2.zip").read_bytes()
    key = load_trusted_key((gaen_exports / f"{SERVER}/public.pem").read_bytes())
    refused(lambda: read_export_archive(data, [key]), R.UNSIGNED)
    export = read_export_archive_unverified(data)
    assert export.region == "US"
    assert len(export.keys) == 50
    assert export.signature_infos == ()
    assert (export.start_timestamp, export.end_timestamp) == (1605818700, 1605819000)
    assert all(key.rolling_period == 144 for key in export.keys)
    assert {key.report_type for key in export.keys} == {
        ReportType.CONFIRMED_TEST,
        ReportType.CONFIRMED_CLINICAL_DIAGNOSIS,
    }
    onsets = [key.days_since_onset for key in export.keys]
    assert all(onset is not None and -11 <= onset <= 10 for onset in onsets)
    assert min(o for o in onsets if o is not None) == -11
    assert max(o for o in onsets if o is not None) == 10
    by_key = {key.key_data.hex(): key for key in export.keys}
    # sint32 zigzag: read as plain int32 these would be 20, 1, 3, 11.
    assert by_key["e0fa5d183b8557b8589bb1ca21c2682b"].days_since_onset == 10
    assert by_key["e189da09dfc9a56bd4ff059143aac6dd"].days_since_onset == -1
    assert by_key["e22a9bca225780c03451dccbf56803f6"].days_since_onset == -2
    assert by_key["e2821a8b22447f1ad3d04fdf31b052c9"].days_since_onset == -6
    assert (
        by_key["e2821a8b22447f1ad3d04fdf31b052c9"].report_type
        is ReportType.CONFIRMED_CLINICAL_DIAGNOSIS
    )
    assert parse_export_bin(members(data)["export.bin"]) == export


@pytest.mark.shared_data
def test_cwa_dev_keys_bin_parses_but_does_not_verify_with_production_key(
    gaen_exports: Path,
) -> None:
    data = (gaen_exports / "cwa-app-android/keys.bin").read_bytes()
    export = read_export_archive_unverified(data)
    assert export.region == "DE"
    assert len(export.keys) == 24131
    assert {key.rolling_period for key in export.keys} == {144}
    assert {key.transmission_risk_level for key in export.keys} <= set(range(1, 8))
    assert export.signature_infos == (SignerInfo("262", "v1", ECDSA_P256_SHA256_OID),)
    production = (gaen_exports / CWA_KEY).read_bytes()
    refused(
        lambda: read_export_archive(data, [load_trusted_key(production, "262", "v1")]),
        R.BAD_SIGNATURE,
    )


@pytest.mark.shared_data
def test_immuni_export_bin_parses(gaen_exports: Path) -> None:
    export = parse_export_bin((gaen_exports / "immuniprotobuf/export.bin").read_bytes())
    assert export.region == "222"
    assert len(export.keys) == 3
    assert {key.transmission_risk_level for key in export.keys} == {8}
    assert export.signature_infos == (SignerInfo("222", "v2", ECDSA_P256_SHA256_OID),)
    assert (export.start_timestamp, export.end_timestamp) == (1598194804, 1598209206)


@pytest.mark.shared_data
def test_internals_bare_export_bin_holds_round_trip_key(gaen_exports: Path) -> None:
    export_bin = (gaen_exports / f"{INTERNALS}/app_res_raw_export.bin").read_bytes()
    export = parse_export_bin(export_bin)
    assert export.region == "US"
    assert len(export.keys) == 110
    # Old-style SignatureInfo with only a reserved field: every field reads as absent.
    assert export.signature_infos == (SignerInfo(None, None, ""),)
    wanted = bytes.fromhex("2b714d3ec93c14e5d345003e59027aea")
    matches = [key for key in export.keys if key.key_data == wanted]
    assert len(matches) == 1
    assert (matches[0].rolling_start, matches[0].rolling_period) == (2646801, 89)
    zipped = members((gaen_exports / VERIFYING[1][0]).read_bytes())["export.bin"]
    assert zipped == export_bin


@pytest.mark.shared_data
def test_cpp_testdata_export_bin_parses(gaen_exports: Path) -> None:
    export = parse_export_bin((gaen_exports / f"{INTERNALS}/cpp_testdata_export.bin").read_bytes())
    assert (export.region, len(export.keys)) == ("US", 200)
    assert 1 in {key.rolling_period for key in export.keys}


# --- container rejections -------------------------------------------------------------------


def test_written_archive_round_trips() -> None:
    keys = make_keys(5)
    result = read_export_archive(write(keys), [trust(SIGNER, "310", "v1")])
    assert sorted(result.export.keys, key=lambda k: k.key_data) == sorted(
        keys, key=lambda k: k.key_data
    )
    assert result.signer == SignerInfo("310", "v1", ECDSA_P256_SHA256_OID)


@pytest.mark.parametrize("missing", ["export.bin", "export.sig"])
def test_missing_member(missing: str) -> None:
    parts = members(write())
    archive = rezip([(name, content) for name, content in parts.items() if name != missing])
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.MISSING_MEMBER, missing)


def test_missing_sig_is_fine_when_unverified_but_missing_bin_is_not() -> None:
    parts = members(write())
    only_bin = rezip([("export.bin", parts["export.bin"])])
    assert len(read_export_archive_unverified(only_bin).keys) == 3
    only_sig = rezip([("export.sig", parts["export.sig"])])
    refused(lambda: read_export_archive_unverified(only_sig), R.MISSING_MEMBER, "export.bin")


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ([("README.txt", b"hi")], "README.txt"),
        ([("dir/", b"")], "dir/"),
        ([("export.bin", b"again")], "export.bin"),
        ([("EXPORT.SIG", b"")], "EXPORT.SIG"),
    ],
)
def test_extra_member(extra: list[tuple[str, bytes]], detail: str) -> None:
    parts = members(write())
    archive = rezip([*parts.items(), *extra])
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.EXTRA_MEMBER, detail)
    refused(lambda: read_export_archive_unverified(archive), R.EXTRA_MEMBER, detail)


@pytest.mark.parametrize("data", [b"", b"PK", b"not a zip at all" * 10, bytes(100)])
def test_not_a_zip(data: bytes) -> None:
    refused(lambda: read_export_archive(data, [trust(SIGNER)]), R.NOT_A_ZIP)
    refused(lambda: read_export_archive_unverified(data), R.NOT_A_ZIP)


def test_bare_export_bin_given_as_archive_says_so() -> None:
    export_bin = members(write())["export.bin"]
    refused(
        lambda: read_export_archive(export_bin, [trust(SIGNER)]), R.NOT_A_ZIP, "bare export.bin"
    )


def test_truncated_zip_is_refused_at_every_length() -> None:
    archive = write()
    for length in range(len(archive)):
        with pytest.raises(KeyFileRejected) as info:
            read_export_archive(archive[:length], [trust(SIGNER)])
        assert info.value.reason in (R.NOT_A_ZIP, R.CORRUPT_ZIP), length


def test_crc_corrupt_member() -> None:
    parts = members(write())
    archive = bytearray(rezip(list(parts.items()), zipfile.ZIP_STORED))
    # Flip one byte of the stored export.bin payload: the CRC no longer matches.
    archive[archive.index(EXPORT_HEADER) + 40] ^= 0xFF
    refused(
        lambda: read_export_archive(bytes(archive), [trust(SIGNER)]), R.CORRUPT_ZIP, "export.bin"
    )


def test_crc_field_corrupted_in_central_directory() -> None:
    archive = bytearray(write())
    central = archive.index(b"PK\x01\x02")  # first central entry: export.bin
    archive[central + 16] ^= 0x01  # CRC-32 field
    refused(
        lambda: read_export_archive(bytes(archive), [trust(SIGNER)]), R.CORRUPT_ZIP, "export.bin"
    )


def test_corrupt_deflate_stream() -> None:
    export_bin = members(write())["export.bin"]
    payload = bytearray(zlib.compress(export_bin, 9)[2:-4])
    payload[0] = 0xFF  # reserved block type 11
    crc = zlib.crc32(export_bin)
    archive = raw_zip(
        [("export.bin", 8, crc, len(export_bin), bytes(payload)), ("export.sig", 0, 0, 0, b"")]
    )
    refused(lambda: read_export_archive_unverified(archive), R.CORRUPT_ZIP, "export.bin")


def test_unsupported_compression_is_refused() -> None:
    archive = rezip(list(members(write()).items()), zipfile.ZIP_BZIP2)
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.CORRUPT_ZIP, "compression")


def test_member_over_bound_is_refused_by_declared_size() -> None:
    archive = write(make_keys(10))
    size = len(members(archive)["export.bin"])
    assert read_export_archive(archive, [trust(SIGNER)], max_bin_bytes=size).export.keys
    refused(
        lambda: read_export_archive(archive, [trust(SIGNER)], max_bin_bytes=size - 1),
        R.TOO_LARGE,
        "export.bin",
    )
    sig_size = len(members(archive)["export.sig"])
    refused(
        lambda: read_export_archive(archive, [trust(SIGNER)], max_sig_bytes=sig_size - 1),
        R.TOO_LARGE,
        "export.sig",
    )
    refused(lambda: read_export_archive_unverified(archive, max_bin_bytes=10), R.TOO_LARGE)


def test_separate_files_over_bound_are_refused() -> None:
    parts = members(write())
    refused(
        lambda: verify_export(
            parts["export.bin"], parts["export.sig"], [trust(SIGNER)], max_bin_bytes=20
        ),
        R.TOO_LARGE,
    )
    refused(
        lambda: verify_export(
            parts["export.bin"], bytes(MAX_EXPORT_SIG_BYTES + 1), [trust(SIGNER)]
        ),
        R.TOO_LARGE,
        "export.sig",
    )


@pytest.fixture(scope="module")
def zip_bomb() -> tuple[bytes, bytes, int]:
    """(archive, one deflate part, inflated size): 1 GiB of zeros in about 1 MB of deflate."""
    chunk = bytes(16 * MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    # A full flush resets the compressor, so each 16 MiB chunk compresses to the same bytes
    # and the 1 GiB stream is built without deflating 1 GiB.
    part = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats = 64
    stream = part * repeats + compressor.flush()
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    size = len(chunk) * repeats
    archive = raw_zip([("export.bin", 8, crc, size, stream), ("export.sig", 0, 0, 0, b"")])
    return archive, part, size


def test_zip_bomb_is_real(zip_bomb: tuple[bytes, bytes, int]) -> None:
    archive, part, size = zip_bomb
    assert size == 1024 * MiB
    assert len(archive) < 2 * MiB
    assert zlib.decompressobj(-15).decompress(part) == bytes(16 * MiB)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.getinfo("export.bin").file_size == size


def test_zip_bomb_is_refused_without_inflating(zip_bomb: tuple[bytes, bytes, int]) -> None:
    archive, _, _ = zip_bomb
    tracemalloc.start()
    try:
        for read in (
            lambda: read_export_archive(archive, [trust(SIGNER)], max_bin_bytes=MiB),
            lambda: read_export_archive_unverified(archive, max_bin_bytes=MiB),
        ):
            # Refused on the declared size, before a single byte is inflated.
            refused(read, R.TOO_LARGE, f"export.bin is {1024 * MiB} bytes")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB


def test_zip_bomb_with_lying_size_header_is_refused(zip_bomb: tuple[bytes, bytes, int]) -> None:
    archive, _, size = zip_bomb
    lying = bytearray(archive)
    central = lying.index(b"PK\x01\x02")
    # Declare 1000 bytes in the central directory (what zipfile trusts) and local header.
    struct.pack_into("<I", lying, central + 24, 1000)
    struct.pack_into("<I", lying, 22, 1000)
    tracemalloc.start()
    try:
        with pytest.raises(KeyFileRejected) as info:
            read_export_archive_unverified(bytes(lying), max_bin_bytes=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason in (R.CORRUPT_ZIP, R.TOO_LARGE)
    assert peak < 8 * MiB
    assert size > MiB


def test_bounded_reader_stops_one_byte_past_the_bound() -> None:
    stream = io.BytesIO(bytes(10 * MiB))
    assert len(kf._read_bounded(stream, MiB)) == MiB + 1
    assert stream.tell() == MiB + 1
    assert kf._read_bounded(io.BytesIO(b"abc"), 3) == b"abc"


# --- header, signature and body rejections ---------------------------------------------------


def test_wrong_header_even_when_validly_signed() -> None:
    export_bin = b"EK Export v2    " + body().SerializeToString()
    refused(lambda: read_export_archive(signed(export_bin), [trust(SIGNER)]), R.BAD_HEADER)
    refused(lambda: parse_export_bin(export_bin), R.BAD_HEADER)
    refused(lambda: parse_export_bin(b"EK Export v1"), R.BAD_HEADER)


@pytest.mark.parametrize("algorithm", ["1.2.3.4", "", "ECDSA p-384 SHA-384", "1.2.840.10045.4.3.3"])
def test_unknown_algorithm(algorithm: str) -> None:
    archive = signed(body(), algorithm=algorithm)
    refused(
        lambda: read_export_archive(archive, [trust(SIGNER)]), R.UNKNOWN_ALGORITHM, repr(algorithm)
    )


@pytest.mark.parametrize("alias", ["ECDSA p-256 SHA-256", "SHA256withECDSA"])
def test_historic_algorithm_aliases_are_ecdsa_sha256(alias: str) -> None:
    result = read_export_archive(signed(body(), algorithm=alias), [trust(SIGNER)])
    assert result.signer.algorithm == alias


def test_sha512_oid_verifies_with_sha512_only() -> None:
    good = signed(body(), algorithm=ECDSA_SHA512_OID, digest=hashes.SHA512())
    assert read_export_archive(good, [trust(SIGNER)]).signer.algorithm == ECDSA_SHA512_OID
    mislabelled = signed(body(), algorithm=ECDSA_SHA512_OID, digest=hashes.SHA256())
    refused(lambda: read_export_archive(mislabelled, [trust(SIGNER)]), R.BAD_SIGNATURE)


def test_bad_signature_variants() -> None:
    parts = members(write())
    message = pb.TEKSignatureList()
    message.ParseFromString(parts["export.sig"])
    for signature in (b"", b"\x30\x00", b"garbage", message.signatures[0].signature[:-1]):
        message.signatures[0].signature = signature
        archive = rezip(
            [("export.bin", parts["export.bin"]), ("export.sig", message.SerializeToString())]
        )
        refused(partial(read_export_archive, archive, [trust(SIGNER)]), R.BAD_SIGNATURE, "'310'")
    refused(lambda: read_export_archive(write(), [trust(OTHER)]), R.BAD_SIGNATURE)


def test_no_key_names_the_signer() -> None:
    error = refused(lambda: read_export_archive(write(), [trust(SIGNER, "262", "v1")]), R.NO_KEY)
    assert "'310'" in error.detail
    assert "'v1'" in error.detail
    refused(lambda: read_export_archive(write(), [trust(SIGNER, "310", "v2")]), R.NO_KEY)
    refused(lambda: read_export_archive(write(), []), R.NO_KEY)


def test_key_lookup_wildcards() -> None:
    for key in (
        trust(SIGNER),
        trust(SIGNER, "310"),
        trust(SIGNER, None, "v1"),
        trust(SIGNER, "310", "v1"),
    ):
        assert read_export_archive(write(), [key]).signer.key_id == "310"


def test_any_of_several_wildcard_keys_may_verify() -> None:
    result = read_export_archive(write(), [trust(OTHER), trust(SIGNER)])
    assert result.signer.key_id == "310"


def test_signature_is_checked_before_keys_are_parsed() -> None:
    bad_keys = body([pb.TemporaryExposureKey(key_data=bytes(15), rolling_start_interval_number=1)])
    refused(lambda: read_export_archive(signed(bad_keys), [trust(SIGNER, "999")]), R.NO_KEY)
    refused(lambda: read_export_archive(signed(bad_keys), [trust(OTHER)]), R.BAD_SIGNATURE)
    refused(lambda: read_export_archive(signed(bad_keys), [trust(SIGNER)]), R.BAD_KEY_LENGTH)


def test_co_signed_file() -> None:
    second = make_signer(0x42, "262", "v1")
    archive = signed(body(infos=2), [SIGNER, second])
    assert read_export_archive(archive, [trust(SIGNER, "310", "v1")]).signer.key_id == "310"
    assert read_export_archive(archive, [trust(second, "262", "v1")]).signer.key_id == "262"
    both = read_export_archive(archive, [trust(SIGNER, "310", "v1"), trust(second, "262", "v1")])
    assert both.signer.key_id == "310"
    # A configured key that fails refuses the file even when another one verifies.
    refused(
        lambda: read_export_archive(
            archive, [trust(SIGNER, "310", "v1"), trust(OTHER, "262", "v1")]
        ),
        R.BAD_SIGNATURE,
        "'262'",
    )


def test_wildcard_key_is_not_held_against_other_cosigners() -> None:
    second = make_signer(0x42, "262", "v1")
    archive = signed(body(infos=2), [SIGNER, second])
    # trust(SIGNER) cannot verify 262's signature, but was never configured for 262.
    assert read_export_archive(archive, [trust(SIGNER)]).signer.key_id == "310"
    error = refused(lambda: read_export_archive(archive, [trust(OTHER)]), R.BAD_SIGNATURE)
    assert "'310'" in error.detail
    assert "'262'" in error.detail


def test_signature_without_key_id_counts_only_when_alone() -> None:
    alone = signed(body(), [SIGNER], key_ids=[None])
    assert read_export_archive(alone, [trust(SIGNER)]).signer.key_id is None
    refused(lambda: read_export_archive(alone, [trust(SIGNER, "310")]), R.NO_KEY, "(none)")
    second = make_signer(0x42, "262", "v1")
    pair = signed(body(infos=2), [SIGNER, second], key_ids=[None, "262"])
    # The anonymous signature is skipped: only 262's counts.
    refused(
        lambda: read_export_archive(pair, [trust(SIGNER, None, "v1")]), R.BAD_SIGNATURE, "'262'"
    )
    assert read_export_archive(pair, [trust(second, "262", "v1")]).signer.key_id == "262"
    refused(lambda: read_export_archive(pair, [trust(SIGNER, "999")]), R.NO_KEY)


@pytest.mark.parametrize(("infos", "signers"), [(2, 1), (0, 1), (1, 2)])
def test_signature_count_mismatch(infos: int, signers: int) -> None:
    cosigners = [SIGNER, make_signer(0x42, "262", "v1")][:signers]
    archive = signed(body(infos=infos), cosigners)
    refused(lambda: read_export_archive(archive, [trust(SIGNER, "310")]), R.SIGNATURE_MISMATCH)


def test_unsigned() -> None:
    empty_sig = write(signers=())
    assert members(empty_sig)["export.sig"] == b""
    refused(lambda: read_export_archive(empty_sig, [trust(SIGNER)]), R.UNSIGNED)
    parts = members(write())
    empty_list = rezip([("export.bin", parts["export.bin"]), ("export.sig", b"\x10\x01")])
    refused(lambda: read_export_archive(empty_list, [trust(SIGNER)]), R.UNSIGNED)
    refused(lambda: verify_export(parts["export.bin"], b"", [trust(SIGNER)]), R.UNSIGNED)


@pytest.mark.parametrize(
    "garbage",
    [b"\x3a\x05\x0a", b"\xff\xff\xff", b"\x0a", b"\x0b" * 200, b"\x3a\x02\x0a\x05"],
)
def test_malformed_protobuf_in_export_bin(garbage: bytes) -> None:
    archive = signed(EXPORT_HEADER + garbage)
    refused(
        lambda: read_export_archive(archive, [trust(SIGNER)]), R.MALFORMED_PROTOBUF, "export.bin"
    )
    refused(lambda: parse_export_bin(EXPORT_HEADER + garbage), R.MALFORMED_PROTOBUF)


def test_malformed_protobuf_in_export_sig() -> None:
    export_bin = members(write())["export.bin"]
    refused(
        lambda: verify_export(export_bin, b"\x0a\x05\x0a", [trust(SIGNER)]),
        R.MALFORMED_PROTOBUF,
        "export.sig",
    )


def test_invalid_utf8_string_is_malformed_protobuf() -> None:
    # The last occurrence of a non-repeated field wins, so append the bad region.
    export_bin = EXPORT_HEADER + body(infos=0).SerializeToString() + b"\x1a\x02\xff\xfe"
    refused(lambda: parse_export_bin(export_bin), R.MALFORMED_PROTOBUF, "region")
    info = b"\x22\x01\xff"  # SignatureInfo.verification_key_id = b"\xff"
    with_bad_info = EXPORT_HEADER + b"\x32" + bytes([len(info)]) + info
    refused(lambda: parse_export_bin(with_bad_info), R.MALFORMED_PROTOBUF, "verification_key_id")


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_bad_key_length(length: int) -> None:
    keys = [
        pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=1),
        pb.TemporaryExposureKey(key_data=bytes(length), rolling_start_interval_number=1),
    ]
    archive = signed(body(keys))
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.BAD_KEY_LENGTH, "keys[1]")


def test_key_lengths_that_add_up_are_still_refused() -> None:
    """A 15- and a 17-byte key join to 32 bytes: each key's own length is what counts."""
    keys = [
        pb.TemporaryExposureKey(key_data=bytes(15), rolling_start_interval_number=1),
        pb.TemporaryExposureKey(key_data=bytes(17), rolling_start_interval_number=1),
    ]
    archive = signed(body(keys))
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.BAD_KEY_LENGTH, "keys[0]")


def test_bad_key_length_in_revised_keys() -> None:
    message = body()
    message.revised_keys.add(key_data=bytes(15), rolling_start_interval_number=1)
    refused(
        lambda: read_export_archive(signed(message), [trust(SIGNER)]),
        R.BAD_KEY_LENGTH,
        "revised_keys[0]",
    )


@pytest.mark.parametrize("period", [0, 145, -1, 2**31 - 1])
def test_bad_rolling_period(period: int) -> None:
    keys = [
        pb.TemporaryExposureKey(
            key_data=bytes(16), rolling_start_interval_number=1, rolling_period=period
        )
    ]
    archive = signed(body(keys))
    refused(
        lambda: read_export_archive(archive, [trust(SIGNER)]), R.BAD_ROLLING_PERIOD, str(period)
    )


@pytest.mark.parametrize("period", [1, 144])
def test_rolling_period_bounds_are_accepted(period: int) -> None:
    keys = [
        pb.TemporaryExposureKey(
            key_data=bytes(16), rolling_start_interval_number=1, rolling_period=period
        )
    ]
    export = read_export_archive(signed(body(keys)), [trust(SIGNER)]).export
    assert export.keys[0].rolling_period == period


def test_absent_rolling_period_is_144_and_absent_fields_are_none() -> None:
    keys = [pb.TemporaryExposureKey(key_data=bytes(range(16)), rolling_start_interval_number=7)]
    (key,) = parse_export_bin(EXPORT_HEADER + body(keys).SerializeToString()).keys
    assert key == DiagnosisKey(bytes(range(16)), 7, 144, None, None, None)


def test_negative_rolling_start() -> None:
    keys = [pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=-1)]
    refused(
        lambda: read_export_archive(signed(body(keys)), [trust(SIGNER)]),
        R.BAD_ROLLING_START,
        "keys[0]",
    )


@pytest.mark.parametrize(
    ("batch_num", "batch_size"),
    [(2, 1), (0, 1), (-1, 5), (1, 0), (1, 1_000_001), (5, 4)],
)
def test_bad_batch(batch_num: int, batch_size: int) -> None:
    archive = signed(body(batch_num=batch_num, batch_size=batch_size))
    refused(lambda: read_export_archive(archive, [trust(SIGNER)]), R.BAD_BATCH)


def test_absent_header_fields_are_none() -> None:
    message = pb.TemporaryExposureKeyExport()
    message.signature_infos.add()
    export = read_export_archive(signed(message), [trust(SIGNER)]).export
    assert export == KeyExport(None, None, None, None, None, (), (), (SignerInfo(None, None, ""),))


def test_days_since_onset_is_zigzag_on_the_wire() -> None:
    key = pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=1)
    wire = key.SerializeToString() + b"\x30\x03"  # field 6, varint 3 -> sint32 -2
    parsed = parse_export_bin(EXPORT_HEADER + b"\x3a" + bytes([len(wire)]) + wire)
    assert parsed.keys[0].days_since_onset == -2


def test_unknown_report_type_value_reads_as_absent() -> None:
    key = pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=1)
    wire = key.SerializeToString() + b"\x28\x09"  # report_type 9 is not in the closed enum
    parsed = parse_export_bin(EXPORT_HEADER + b"\x3a" + bytes([len(wire)]) + wire)
    assert parsed.keys[0].report_type is None


# --- writer ---------------------------------------------------------------------------------


def test_writer_is_deterministic_and_ens_shaped() -> None:
    keys = make_keys(6)
    archive = write(keys)
    assert archive == write(list(reversed(keys)))
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        infos = zf.infolist()
    assert [info.filename for info in infos] == ["export.bin", "export.sig"]
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
    parts = members(archive)
    assert parts["export.bin"].startswith(EXPORT_HEADER)
    message = pb.TemporaryExposureKeyExport()
    message.ParseFromString(parts["export.bin"][16:])
    assert [key.key_data for key in message.keys] == sorted(key.key_data for key in keys)
    for key in message.keys:
        assert key.HasField("rolling_period") == (key.rolling_period != 144)
    assert (message.region, message.batch_num, message.batch_size) == ("US", 1, 1)
    assert (message.start_timestamp, message.end_timestamp) == (1_600_000_000, 1_600_003_600)
    info = message.signature_infos[0]
    assert (info.verification_key_id, info.verification_key_version, info.signature_algorithm) == (
        "310",
        "v1",
        ECDSA_P256_SHA256_OID,
    )
    sig = pb.TEKSignatureList()
    sig.ParseFromString(parts["export.sig"])
    assert len(sig.signatures) == 1
    assert sig.signatures[0].signature_info == info
    # The openssl-equivalent check: DER ECDSA P-256 over SHA-256 of the whole export.bin.
    SIGNER.private_key.public_key().verify(
        sig.signatures[0].signature, parts["export.bin"], ec.ECDSA(hashes.SHA256())
    )


def test_writer_revised_keys_and_batches() -> None:
    keys, revised = make_keys(2), make_keys(4)[2:]
    archive = write_export_archive(
        keys,
        region="DE",
        start_timestamp=0,
        end_timestamp=0,
        signers=[SIGNER, OTHER],
        batch_num=2,
        batch_size=3,
        revised_keys=revised,
    )
    result = read_export_archive(archive, [trust(OTHER, "262", "v1")])
    assert set(result.export.revised_keys) == set(revised)
    assert (result.export.batch_num, result.export.batch_size) == (2, 3)
    assert len(result.export.signature_infos) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key_data": bytes(15)}, "16 bytes"),
        ({"key_data": bytes(17)}, "16 bytes"),
        ({"rolling_period": 0}, "rolling_period"),
        ({"rolling_period": 145}, "rolling_period"),
        ({"rolling_start": -1}, "rolling_start"),
        ({"rolling_start": 2**31}, "rolling_start"),
        ({"transmission_risk_level": 9}, "transmission_risk_level"),
        ({"days_since_onset": 2**31}, "days_since_onset"),
        ({"days_since_onset": -(2**31) - 1}, "days_since_onset"),
    ],
)
def test_writer_rejects_bad_keys(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"key_data": bytes(16), "rolling_start": 1, **change}
    key = DiagnosisKey(**fields)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        write([key])
    with pytest.raises(InvalidInput, match="revised_keys"):
        write_export_archive(
            [],
            region="US",
            start_timestamp=0,
            end_timestamp=1,
            signers=[SIGNER],
            revised_keys=[key],
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_num": 2, "batch_size": 1},
        {"batch_num": 0},
        {"start_timestamp": 5, "end_timestamp": 4},
        {"start_timestamp": -1},
        {"end_timestamp": 2**64},
        {"signers": [SIGNER, make_signer(7, "310", "v1")]},
        {"region": "\udc80"},
    ],
)
def test_writer_rejects_bad_header(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "region": "US",
        "start_timestamp": 0,
        "end_timestamp": 10,
        "signers": [SIGNER],
        **kwargs,
    }
    with pytest.raises(InvalidInput):
        write_export_archive(make_keys(), **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key_id", "version"), [("31-0", "v1"), ("310", ""), ("", "v1"), ("a b", "v1"), ("é", "v1")]
)
def test_signer_and_trusted_key_names(key_id: str, version: str) -> None:
    with pytest.raises(InvalidInput):
        make_signer(5, key_id, version)
    with pytest.raises(InvalidInput):
        trust(SIGNER, key_id, version)


def test_signer_and_trusted_key_must_be_p256() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidInput, match="P-256"):
        Signer(p384, "310", "v1")
    with pytest.raises(InvalidInput, match="P-256"):
        TrustedKey(None, None, p384.public_key())


def test_load_trusted_key_formats() -> None:
    pem = public_pem(SIGNER)
    key = load_trusted_key(pem, "310", "v1")
    assert (key.key_id, key.key_version) == ("310", "v1")
    assert key.public_key == SIGNER.private_key.public_key()
    base64_line = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    assert base64_line.startswith(b"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    assert load_trusted_key(base64_line + b"\n").public_key == key.public_key
    assert read_export_archive(write(), [key]).signer.key_id == "310"


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    ],
)
def test_load_trusted_key_refuses_non_p256(pem: bytes) -> None:
    with pytest.raises(InvalidInput):
        load_trusted_key(pem)


def test_keys_decode_alike_across_decoding_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kf, "DECODE_BLOCK_KEYS", 3)
    keys = [
        DiagnosisKey(bytes([i]) * 16, 2_900_000 + i, 144 - i, i % 9, ReportType.CONFIRMED_TEST, i)
        for i in range(10)
    ]
    archive = write_export_archive(
        keys, region="VN", start_timestamp=1, end_timestamp=2, signers=[SIGNER]
    )
    export = read_export_archive(archive, [trust(SIGNER)]).export
    assert isinstance(export.keys, kf.PublishedKeys)
    assert export.keys.rolling_period.tolist() == [144 - i for i in range(10)]
    assert list(export.keys) == keys
    # A bad key in a later block is named by its index in the file.
    bad = [
        pb.TemporaryExposureKey(
            key_data=bytes([i]) * 16, rolling_start_interval_number=1, rolling_period=144
        )
        for i in range(10)
    ]
    bad[7].rolling_period = 0
    refused(
        lambda: read_export_archive(signed(body(bad)), [trust(SIGNER)]),
        R.BAD_ROLLING_PERIOD,
        "keys[7] has rolling_period 0",
    )


@pytest.mark.parametrize("onset", [-(2**31), 2**31 - 1])
def test_days_since_onset_round_trips_at_the_int32_limits(onset: int) -> None:
    key = DiagnosisKey(bytes(16), 1, 144, None, ReportType.CONFIRMED_TEST, onset)
    archive = write_export_archive(
        [key], region="VN", start_timestamp=1, end_timestamp=2, signers=[SIGNER]
    )
    assert read_export_archive(archive, [trust(SIGNER)]).export.keys[0].days_since_onset == onset


def test_a_negative_rolling_start_is_named_even_with_the_shortest_period() -> None:
    keys = [
        pb.TemporaryExposureKey(
            key_data=bytes(16), rolling_start_interval_number=-1, rolling_period=1
        )
    ]
    refused(
        lambda: read_export_archive(signed(body(keys)), [trust(SIGNER)]),
        R.BAD_ROLLING_START,
        "rolling_start -1",
    )
