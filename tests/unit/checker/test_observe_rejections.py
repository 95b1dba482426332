"""The checker reads each recipient's refused deliveries from its inbox store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from broker.checker import Refused, read_rejections
from broker.crypto import AeadSealer
from broker.store import InboxStore, RejectedDelivery

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_read_rejections_names_the_recipient_and_the_attested_view(tmp_path: Path) -> None:
    """One row per refusal, under the store's recipient; a store not there holds none."""
    path = tmp_path / "rs.sqlite"
    with InboxStore.open(
        path, recipient="RS", sealer=AeadSealer(), dedup_retention=dt.timedelta(days=2)
    ) as store:
        store.put_many(
            [],
            rejected=[
                RejectedDelivery(
                    reason_code="unknown_key",
                    reason="envelope: revoked",
                    rejected_at=T0,
                    frame=b"XBD1",
                    frame_size=4,
                    message_id="m1",
                    sender="GB",
                    case_id="GB-1",
                    identified_by="attestation",
                )
            ],
        )
    found = read_rejections({"RS": path, "MK": tmp_path / "absent.sqlite"})
    assert found == [Refused("RS", "m1", "GB", "GB-1", "unknown_key")]
