"""keyfile.PublishedKeys: an export's keys as validated columns, decoded one by one when read."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.exposure.keyfile import (
    PublishedKeys,
    Signer,
    all_keys,
    read_export_archive_unverified,
    write_export_archive,
)
from bluezoned.models import DiagnosisKey, ReportType

SIGNER = Signer(ec.generate_private_key(ec.SECP256R1()), "310", "v1")
KEYS = (
    DiagnosisKey(bytes([1]) * 16, 2_900_000, 144, 5, ReportType.CONFIRMED_TEST, -2),
    DiagnosisKey(bytes([2]) * 16, 2_900_144, 100, None, None, None),
    DiagnosisKey(bytes([3]) * 16, 2_900_288, 144, 8, ReportType.RECURSIVE, 3),
)
REVISED = (DiagnosisKey(bytes([4]) * 16, 2_900_000, 144, None, ReportType.REVOKED, None),)


def _export() -> tuple[PublishedKeys, PublishedKeys]:
    data = write_export_archive(
        KEYS,
        region="VN",
        start_timestamp=1,
        end_timestamp=2,
        signers=[SIGNER],
        revised_keys=REVISED,
    )
    export = read_export_archive_unverified(data)
    assert isinstance(export.keys, PublishedKeys)
    assert isinstance(export.revised_keys, PublishedKeys)
    return export.keys, export.revised_keys


def test_columns_and_decoded_keys_agree_with_what_was_written() -> None:
    keys, revised = _export()
    assert len(keys) == 3
    assert tuple(keys) == KEYS  # the writer sorts by key bytes, as KEYS already are
    assert keys == KEYS
    assert keys == list(KEYS)
    assert keys != KEYS[:2]
    assert revised == REVISED
    assert keys.key_data.shape == (3, 16)
    assert keys.key_data.dtype == np.uint8
    assert bytes(keys.key_data[1]) == KEYS[1].key_data
    assert keys.rolling_start.tolist() == [k.rolling_start for k in KEYS]
    assert keys.rolling_period.tolist() == [144, 100, 144]
    with pytest.raises(ValueError, match="read-only"):
        keys.rolling_start[0] = 0  # the columns cannot drift from the decoded keys


def test_indexing_slices_and_errors() -> None:
    keys, _ = _export()
    assert keys[0] == KEYS[0]
    assert keys[-1] == KEYS[-1]
    assert keys[1:] == KEYS[1:]
    assert keys[::-1] == KEYS[::-1]
    assert keys.index(KEYS[2]) == 2
    assert KEYS[1] in keys
    with pytest.raises(IndexError):
        keys[3]
    with pytest.raises(IndexError):
        keys[-4]
    assert repr(keys) == "PublishedKeys(3 keys)"
    assert hash(keys) == hash(KEYS)


def test_concat_keeps_order_columns_and_lookup_across_parts() -> None:
    keys, revised = _export()
    both = PublishedKeys.concat(keys, revised)
    assert both == KEYS + REVISED
    assert both[3] == REVISED[0]
    assert both.key_data.shape == (4, 16)
    assert both.rolling_start.tolist() == [k.rolling_start for k in KEYS + REVISED]
    export = read_export_archive_unverified(
        write_export_archive(
            KEYS, region="VN", start_timestamp=1, end_timestamp=2, signers=[SIGNER]
        )
    )
    assert all_keys(export) == KEYS  # no revised keys: an empty second part
    assert len(PublishedKeys.concat(keys, revised, keys)) == 7
