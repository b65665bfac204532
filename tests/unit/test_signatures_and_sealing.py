"""Agency signatures and sealed records, on real keys in a temporary keys directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from connectors.keys import KeyFileError, KeysDirectory, write_key_pair
from connectors.sealing import KeyNotHeld, NotSealed, SealedRecordError, Sealer, UnknownSender, sealed_key_id
from connectors.signatures import AgencyVerifier, RecordSigner, Unauthenticated, signer_for

TOPIC = "agency.court.events"
VALUE = b"\xc3\x01 an event naming Jane Example"


@pytest.fixture
def keys(tmp_path: Path) -> KeysDirectory:
    keys = KeysDirectory(tmp_path / "keys")
    keys.create_missing(["court", "prison"], ["YH", "GM"])
    return keys


def headers_of(
    signer: RecordSigner, topic: str = TOPIC, key: bytes | None = b"A1234BC", value: bytes = VALUE
):
    return dict(signer.headers(topic, key, value))


def test_a_record_signed_by_its_agency_verifies(keys: KeysDirectory) -> None:
    verifier = AgencyVerifier(keys, ["court", "prison"])
    verifier.verify("court", TOPIC, b"A1234BC", VALUE, headers_of(signer_for(keys, "court")))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"value": VALUE + b"!"}, "does not match"),
        ({"key": b"B2345CD"}, "does not match"),
        ({"key": None}, "does not match"),
        ({"topic": "agency.court.urgent"}, "does not match"),
    ],
)
def test_a_changed_record_does_not_verify(keys: KeysDirectory, change: dict, reason: str) -> None:
    signed = headers_of(signer_for(keys, "court"))
    record = {"topic": TOPIC, "key": b"A1234BC", "value": VALUE} | change
    with pytest.raises(Unauthenticated, match=reason):
        AgencyVerifier(keys, ["court"]).verify("court", headers=signed, **record)


def test_another_agencys_key_is_refused_naming_the_key(keys: KeysDirectory) -> None:
    prison = signer_for(keys, "prison")
    with pytest.raises(Unauthenticated, match=f"{prison.key_id}.*not a key of agency court"):
        AgencyVerifier(keys, ["court", "prison"]).verify(
            "court", TOPIC, b"A1234BC", VALUE, headers_of(prison)
        )


def test_an_unsigned_record_is_refused(keys: KeysDirectory) -> None:
    with pytest.raises(Unauthenticated, match="not signed"):
        AgencyVerifier(keys, ["court"]).verify("court", TOPIC, None, VALUE, {})


def test_a_new_agency_key_is_accepted_from_its_first_record_and_the_old_one_still_is(
    keys: KeysDirectory,
) -> None:
    verifier = AgencyVerifier(keys, ["court"])
    old = signer_for(keys, "court")
    verifier.verify("court", TOPIC, None, VALUE, headers_of(old, key=None))
    write_key_pair(keys.agency("court"), "signing")
    new = signer_for(keys, "court")
    assert new.key_id > old.key_id  # the newest signs from now on
    verifier.verify("court", TOPIC, None, VALUE, headers_of(new, key=None))
    verifier.verify("court", TOPIC, None, VALUE, headers_of(old, key=None))


def test_a_removed_agency_key_no_longer_verifies_within_a_second(keys: KeysDirectory) -> None:
    clock = [0.0]
    verifier = AgencyVerifier(keys, ["court"], clock=lambda: clock[0])
    old = signer_for(keys, "court")
    write_key_pair(keys.agency("court"), "signing")
    verifier.verify("court", TOPIC, None, VALUE, headers_of(old, key=None))
    (keys.agency("court") / f"{old.key_id}.pub").unlink()
    os.utime(keys.agency("court"), ns=(1, 1))  # a changed directory, however coarse the file system's clock
    verifier.verify("court", TOPIC, None, VALUE, headers_of(old, key=None))  # not looked at again yet
    clock[0] += 1.0
    with pytest.raises(Unauthenticated, match="not a key of agency court"):
        verifier.verify("court", TOPIC, None, VALUE, headers_of(old, key=None))


def test_private_key_files_are_readable_by_their_owner_only(keys: KeysDirectory) -> None:
    for path in keys.root.rglob("*.key"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_key_of_the_wrong_kind_is_a_clear_error(keys: KeysDirectory, tmp_path: Path) -> None:
    unit_key = next(keys.unit("YH").glob("*.key"))
    wrong = keys.agency("court") / unit_key.name
    wrong.write_bytes(unit_key.read_bytes())
    with pytest.raises(KeyFileError, match="not an Ed25519 private key"):
        signer_for(keys, "court")


def test_a_sealed_value_opens_only_with_its_key(keys: KeysDirectory) -> None:
    sealed = keys.sealer(keys.unit("YH")).seal(VALUE)
    key_id = keys.newest_sealing_key(keys.unit("YH"))[0]
    assert b"Jane" not in sealed and sealed_key_id(sealed) == key_id
    assert keys.opener(keys.unit("YH")).open(sealed) == VALUE
    with pytest.raises(KeyNotHeld, match=key_id):
        keys.opener(keys.unit("GM")).open(sealed)


def test_a_value_sealed_by_anyone_but_the_hub_does_not_open(keys: KeysDirectory) -> None:
    recipient = keys.newest_sealing_key(keys.unit("YH"))
    impostor = X25519PrivateKey.generate()
    # The unit's public key is no secret: an impostor seals a notification with a key of their own...
    with pytest.raises(UnknownSender, match="impostor-key"):
        keys.opener(keys.unit("YH")).open(Sealer(*recipient, "impostor-key", impostor).seal(b"escaped!"))
    # ... or claims the hub's key id without holding the hub's key.
    hub_id = keys.newest_sender_key()[0]
    with pytest.raises(SealedRecordError, match="was not sealed for it by sender"):
        keys.opener(keys.unit("YH")).open(Sealer(*recipient, hub_id, impostor).seal(b"escaped!"))


def test_a_sealed_value_that_was_altered_does_not_open(keys: KeysDirectory) -> None:
    sealed = keys.sealer(keys.unit("YH")).seal(VALUE)
    opener = keys.opener(keys.unit("YH"))
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealedRecordError, match="altered"):
        opener.open(tampered)
    with pytest.raises(NotSealed):
        opener.open(VALUE)
    with pytest.raises(SealedRecordError, match="truncated"):
        opener.open(sealed[:40])


def test_many_records_share_a_data_key_and_each_opens(keys: KeysDirectory) -> None:
    sealer = keys.sealer(keys.unit("YH"))
    values = [f"notification {n}".encode() for n in range(50)]
    sealed = [sealer.seal(value) for value in values]
    assert len(set(sealed)) == 50  # a fresh nonce each time
    opener = keys.opener(keys.unit("YH"))
    assert [opener.open(value) for value in sealed] == values


def test_after_rotation_new_values_use_the_new_key_and_old_ones_still_open(keys: KeysDirectory) -> None:
    old = keys.sealer(keys.unit("YH")).seal(b"before")
    newest_id = write_key_pair(keys.unit("YH"), "sealing")
    write_key_pair(keys.hub, "sealing")  # the hub's own key rotates the same way
    new = keys.sealer(keys.unit("YH")).seal(b"after")
    assert sealed_key_id(new) == newest_id != sealed_key_id(old)
    opener = keys.opener(keys.unit("YH"))
    assert (opener.open(old), opener.open(new)) == (b"before", b"after")
