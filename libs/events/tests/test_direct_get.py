"""An answer counts only when it is a snapshot that reaches the reader's own write."""

from __future__ import annotations

from pathlib import Path

import nats
from nats.js.api import KeyValueConfig, StorageType

from civicgrid.events.direct_get import RawMessage, reaches
from civicgrid.events.streams import INTAKE_DUPLICATES_BUCKET, ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port


def message(sequence: int) -> RawMessage:
    return RawMessage(sequence, {}, b"")


def test_an_answer_reaches_a_sequence_by_its_position_or_by_a_message_that_far_on() -> None:
    assert reaches([], None, 0)
    assert reaches([message(3)], 9, 9)
    assert reaches([message(9)], None, 9)
    assert not reaches([message(3)], 8, 9)
    assert not reaches([message(3)], None, 9)
    # "Nothing matches" from a replica that has not applied the reader's own write yet.
    assert not reaches([], None, 9)


async def test_provisioning_lets_an_older_claims_bucket_answer_direct_gets(
    tmp_path: Path,
) -> None:
    """Intake reads claims with Direct Gets; a bucket created before that gets them allowed."""
    server = EmbeddedNats(data_dir=tmp_path, port=free_port())
    server.start()
    client = await nats.connect(server.client_url)
    try:
        js = client.jetstream()
        await js.create_key_value(
            KeyValueConfig(bucket=INTAKE_DUPLICATES_BUCKET, history=1, storage=StorageType.FILE)
        )
        claims = f"KV_{INTAKE_DUPLICATES_BUCKET}"
        assert not (await js.stream_info(claims)).config.allow_direct
        await ensure_streams(js)
        assert (await js.stream_info(claims)).config.allow_direct
    finally:
        await client.close()
        server.stop()
