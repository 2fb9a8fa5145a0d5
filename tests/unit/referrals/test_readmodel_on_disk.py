"""The partner API's read model on disk (``StoredReferralIndex`` over a ``StoredView`` of the worker's state
topic): records found by id and by agency after a restart, pending submissions laid over them, and an
erased referral's old record (its data key destroyed) not found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from schemas.common import ReferralStatus
from schemas.events.referrals import SubmitReferral
from services.protection.keks import LocalKeks
from services.protection.sealer import Sealer
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import ReferralEntry, ReferralRecord, submit
from services.referrals.readmodel import Pending, ReferralReadModel
from tests.keystores import keystore_on_disk
from tests.samples import submission

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
KEKS = LocalKeks({"k1": b"k" * 32}, "k1")


def sealer_on_disk(directory: Path) -> Sealer:
    return Sealer({"referral": keystore_on_disk(directory, KEKS)})


def read_model(directory: Path) -> tuple[ReferralReadModel, Sealer]:
    sealer = sealer_on_disk(directory / "keys")
    return ReferralReadModel("127.0.0.1:9", sealer, directory=directory / "state"), sealer


async def store_entry(model: ReferralReadModel, sealer: Sealer, agency: str, reference: str) -> uuid.UUID:
    """What the view does with a state record the worker wrote: into the store, then told to the index."""
    referral_id = uuid.uuid4()
    body = submission(agency_reference=reference)
    command = SubmitReferral(
        referral_id=referral_id,
        agency_id=agency,
        submission=body,
        fingerprint=body.fingerprint(),
        received_at=NOW,
        channel="http",
    )
    entry = submit(None, command, uuid.uuid4(), load_policy(), NOW, "http://partners.test").entry
    assert entry is not None
    raw = await sealer.encode_value(ReferralEntry, entry, f"referral:{referral_id}")
    assert b"Testy" not in raw  # sealed as the worker writes it
    model.view.write_ahead(str(referral_id), raw)
    model.index.changed(str(referral_id), raw)
    return referral_id


async def stop(model: ReferralReadModel, sealer: Sealer) -> None:
    await model.stop()
    await sealer.stop()


async def test_records_are_found_by_id_and_agency_after_a_restart(tmp_path: Path) -> None:
    model, sealer = read_model(tmp_path)
    mappa = [await store_entry(model, sealer, "mappa-humberside", f"M-{n}") for n in range(3)]
    police = await store_entry(model, sealer, "police-mosovo", "P-1")
    await stop(model, sealer)

    model, sealer = read_model(tmp_path)
    try:
        index = model.index
        assert len(index) == 4
        found = index.get(mappa[0])
        assert isinstance(found, ReferralRecord) and found.agency_reference == "M-0"
        assert found.status is not ReferralStatus.WITHDRAWN
        assert "Testy" in found.model_dump_json()  # opened with its data key, from the key store on disk
        assert {r.referral_id for r in index.of_agency("mappa-humberside")} == set(mappa)
        assert index.owned_by(police, "mappa-humberside") is None
        assert [r.referral_id for r in index.of_agency("police-mosovo")] == [police]
    finally:
        await stop(model, sealer)


async def test_a_pending_submission_is_answered_until_the_worker_has_written_it(tmp_path: Path) -> None:
    model, sealer = read_model(tmp_path)
    try:
        referral_id = uuid.uuid4()
        pending = Pending(
            referral_id, "mappa-humberside", "NEW-1", 1, None, ReferralStatus.RECEIVED, NOW, NOW
        )
        model.index.add_pending(pending)
        assert model.index.get(referral_id) is pending
        assert [r.referral_id for r in model.index.of_agency("mappa-humberside")] == [referral_id]
        assert len(model.index) == 1
    finally:
        await stop(model, sealer)


async def test_an_erased_referrals_old_record_is_not_found_once_its_key_is_destroyed(tmp_path: Path) -> None:
    model, sealer = read_model(tmp_path)
    try:
        erased = await store_entry(model, sealer, "mappa-humberside", "GONE-1")
        kept = await store_entry(model, sealer, "mappa-humberside", "KEPT-1")
        assert model.index.get(erased) is not None
        assert await sealer.destroy(f"referral:{erased}") == 1
        model.index.changed(str(erased), model.view.get(str(erased)))  # as when the worker writes it again
        assert model.index.get(erased) is None
        assert [r.referral_id for r in model.index.of_agency("mappa-humberside")] == [kept]
    finally:
        await stop(model, sealer)
