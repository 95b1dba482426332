"""Attacks on the audit log, against the real gateway and witness daemons on the embedded broker.

The attacker writes the audit topic directly (the embedded broker has no ACLs) with records
built from the documents alone (:mod:`tests.adversarial.audit_forge`). What must hold:

- nothing it writes is covered by a signed checkpoint as a valid entry: each record is
  refused by offset, the refusal raised on the gateway's metrics, the gateway stays ready;
- ``broker audit verify``, ``replay`` and ``report`` fail by default on such a log, naming the
  first forged record's index, and the report leaves the forgery out of every count;
- a bundle cut short (its last checkpoints dropped with its tail) passes alone but is refused
  against a checkpoint the witness cosigned;
- the records of one gateway batch share one signature and each verifies alone by the
  document's recipe; the same records moved in their batch, or re-signed as a batch by anyone
  else, are refused like any forgery;
- a checkpoint that forks the log, even one a stolen gateway key signed, is refused by the
  witness and counted as an alert, and the witness goes on cosigning the honest log.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ruamel.yaml import YAML

from broker.config import audit_topic, outbox_topic, witness_topic
from broker.demo.federation import GATEWAY, WITNESS, Federation
from broker.keys import read_passphrase
from broker.schema import Message, labels_of
from broker.schema.labels import DataCategory, Labels
from broker.transport.testing import KafkaUnderTest
from tests.adversarial import audit_forge as forge
from tests.adversarial import wire
from tests.adversarial.rawkafka import RawKafka, RawRecord
from tests.e2e.harness import TopicReader, new_federation, produce, report, seal_as, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: a bound on a hang, not a performance threshold
TIMEOUT_S = 90.0
REFUSED = "xb_audit_refused_records_total"


@pytest.fixture
def federation(kafka: KafkaUnderTest, tmp_path: Path) -> Iterator[Federation]:
    """A fresh federation whose gateway checkpoints every second, with its witness running."""
    with new_federation(tmp_path / "federation", kafka) as made:
        config = made.config_path(GATEWAY)
        yaml = YAML(typ="safe")
        document = yaml.load(config.read_text(encoding="utf-8"))
        document["gateway"] = {"checkpoint_interval_seconds": 1}
        with config.open("w", encoding="utf-8") as handle:
            yaml.dump(document, handle)
        made.start_many([GATEWAY, WITNESS])
        yield made


def disclose(federation: Federation) -> str:
    """GB seals a report for RS onto its outbox, labelled within the gb-rs flow (no biometric
    data: the accord wants it redacted); the gateway delivers it and audits that."""
    message = report(uuid.uuid4().hex)
    message_id, sealed = seal_as(
        federation, "GB", "RS", message, accord="gb-rs", labels=fitting(message)
    )
    asyncio.run(
        produce(
            federation.bootstrap,
            outbox_topic(federation.prefix, "GB"),
            sealed,
            headers=[("xb-recipient", b"RS")],
        )
    )
    wait_for(
        lambda: any(message_id.encode() in v for _, v in audit_log(federation)),
        timeout_s=TIMEOUT_S,
        what=f"the audit record of {message_id}",
    )
    return str(message_id)


def fitting(message: Message) -> Labels:
    """The message's labels within the gb-rs flow: no biometric data (the accord wants it
    redacted)."""
    labels = labels_of(message)
    return labels.model_copy(
        update={"data_categories": labels.data_categories - {DataCategory.BIOMETRIC}}
    )


def audit_log(federation: Federation) -> list[tuple[int, bytes]]:
    """(offset, value) of every record on the audit topic (a missing value as b"")."""
    records = TopicReader(federation.bootstrap, audit_topic(federation.prefix)).read()
    return [(r.offset, r.value or b"") for r in records]


def checkpoints(federation: Federation) -> list[dict[str, object]]:
    """The checkpoint records the gateway wrote (its note names the audit topic's origin)."""
    origin = f"broker/{audit_topic(federation.prefix)}".encode()
    found = []
    for _, value in audit_log(federation):
        if value.startswith(b'{"from":') and origin + b"\\n" in value:
            document = json.loads(value)
            if not document["note"].startswith(f"{origin.decode()}\n"):
                continue
            found.append(document)
    return found


def listed_refused(federation: Federation) -> set[tuple[int, str]]:
    """(offset, reason code) of every record a checkpoint lists as refused."""
    return {(o, r) for c in checkpoints(federation) for o, r in c["refused"]}  # type: ignore[attr-defined]


def covered_leaves(federation: Federation) -> set[bytes]:
    """The leaf hashes the checkpoints cover."""
    return {
        base64.b64decode(c["leaves"])[i : i + 32]  # type: ignore[arg-type]
        for c in checkpoints(federation)
        for i in range(0, len(base64.b64decode(c["leaves"])), 32)  # type: ignore[arg-type]
    }


def cosigned(federation: Federation) -> list[bytes]:
    """Every note the witness published."""
    records = TopicReader(federation.bootstrap, witness_topic(federation.prefix)).read()
    return [r.value or b"" for r in records]


def note_size(note: bytes) -> int:
    return int(note.split(b"\n")[1])


def note_root(note: bytes) -> bytes:
    return base64.b64decode(note.split(b"\n")[2])


def metric(federation: Federation, daemon: str, series: str) -> float:
    return federation.metrics(daemon).get(series, 0.0)


def ready(federation: Federation, daemon: str) -> int:
    """The HTTP status of the daemon's /readyz."""
    try:
        url = f"http://127.0.0.1:{federation.port(daemon)}/readyz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def broker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def export(federation: Federation, bundle: Path) -> None:
    done = broker(
        "audit", "export", "--bootstrap", federation.bootstrap,
        "--topic", audit_topic(federation.prefix), "--registry", str(federation.registry_path),
        "--accords", str(federation.accords_dir), "-o", str(bundle), "--quiet-seconds", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def record_index(log: list[tuple[int, bytes]], offset: int) -> int:
    """The index ``audit verify`` gives the record at ``offset``: its position among the
    records that do not claim to be checkpoints."""
    return sum(1 for o, v in log if o < offset and not v.startswith(b'{"from":'))


def test_forged_audit_records_are_never_covered_and_fail_every_audit_command(
    federation: Federation, tmp_path: Path
) -> None:
    """Five kinds of forgery around genuine traffic: each refused by offset with its reason,
    counted on the gateway's metrics, never a leaf; the gateway stays ready; verify, replay
    and report fail naming the first one, and the report counts only the genuine records."""
    disclose(federation)
    genuine = next(v for _, v in audit_log(federation) if b'"kind":"disclosure"' in v)
    attacker = Ed25519PrivateKey.generate()
    gateway_key_id = json.loads(genuine)["gateway_key_id"]
    to_xk = {"recipient": "XK", "message_id": str(uuid.uuid4())}
    stranger_note = forge.checkpoint_note(
        f"broker/{audit_topic(federation.prefix)}", 0, forge.root([]), dt.datetime.now(dt.UTC),
        attacker,
    )  # fmt: skip
    forgeries = {
        "unknown_key": forge.resigned(genuine, attacker, **to_xk),
        "bad_signature": forge.resigned(genuine, attacker, key_id=gateway_key_id, **to_xk),
        "malformed": b"\xff\xfe\x00 not even UTF-8",
        "bad_checkpoint": forge.checkpoint_record(stranger_note, first=0, leaves=[], through=0),
    }
    topic = audit_topic(federation.prefix)
    offsets = {
        reason: asyncio.run(forge.write(federation.bootstrap, topic, value))
        for reason, value in forgeries.items()
    }
    nothing = asyncio.run(forge.write(federation.bootstrap, topic, None))
    disclose(federation)  # legitimate traffic flows on

    expected = {(o, reason) for reason, o in offsets.items()} | {(nothing, "malformed")}
    wait_for(
        lambda: expected <= listed_refused(federation),
        timeout_s=TIMEOUT_S,
        what="a checkpoint listing every forgery as refused",
    )
    leaves = covered_leaves(federation)
    assert not {forge.leaf(v) for v in forgeries.values()} & leaves
    for reason, count in (("unknown_key", 1), ("bad_signature", 1), ("malformed", 2)):
        series = f'{REFUSED}{{reason_code="{reason}"}}'
        assert metric(federation, GATEWAY, series) == count, series
    assert ready(federation, GATEWAY) == 200
    assert metric(federation, GATEWAY, "xb_audit_checkpointer_up") == 1

    bundle = tmp_path / "audit.bundle"
    export(federation, bundle)
    first = record_index(audit_log(federation), offsets["unknown_key"])
    verified = broker("audit", "verify", str(bundle))
    assert verified.returncode == 11
    assert f"invalid_record at index {first}" in verified.stderr
    replayed = broker("audit", "replay", str(bundle))
    assert replayed.returncode == 11
    assert f"invalid_record at index {first}" in replayed.stderr
    page = tmp_path / "report.html"
    reported = broker("audit", "report", str(bundle), "--html", str(page))
    assert reported.returncode == 11
    html = page.read_text(encoding="utf-8")
    assert 'class="verification failed" data-verified="false"' in html
    assert f'data-first-bad-index="{first}"' in html
    assert "data-recipient='XK'" not in html, "the forged disclosure to XK is counted nowhere"
    assert "data-sender='GB' data-recipient='RS' data-category='operational'>2<" in html


def test_a_gateway_batch_of_audit_records_verifies_alone_and_cannot_be_moved(
    federation: Federation,
) -> None:
    """Four envelopes in one Kafka batch: the gateway decides them together and signs their
    audit records under one head. Each verifies by GATEWAY.md's recipe; moving one in its
    batch, or a batch re-signed under the gateway's key id by another key, is refused."""
    messages = [report(uuid.uuid4().hex) for _ in range(4)]
    sealed = dict(
        seal_as(federation, "GB", "RS", m, accord="gb-rs", labels=fitting(m)) for m in messages
    )

    async def together() -> None:
        records = [RawRecord(None, value, ((b"xb-recipient", b"RS"),)) for value in sealed.values()]
        async with RawKafka(federation.bootstrap) as kafka:
            await kafka.produce(outbox_topic(federation.prefix, "GB"), records)

    asyncio.run(together())

    def audited() -> list[bytes] | None:
        mine = [v for _, v in audit_log(federation) if json_field(v, "message_id") in sealed]
        return mine if len(mine) == len(sealed) else None

    records = wait_for(audited, timeout_s=TIMEOUT_S, what="the four audit records")
    gateway = wire.Registry.read(federation.registry_path).gateway_public()
    assert all(forge.gateway_signed(v, gateway) for v in records)
    batched = [v for v in records if json.loads(v)["v"] == 2]
    assert len(batched) >= 2, "one Kafka batch is decided, and audited, together"
    assert len({json.loads(v)["signature"] for v in batched}) == 1

    genuine = json.loads(batched[0])
    batch = genuine["batch"]
    path, size = batch["path"], batch["size"]
    flipped = [("f" if path[0][0] != "f" else "0") + path[0][1:], *path[1:]]
    moved = {
        "index": {**batch, "index": (batch["index"] + 1) % size},
        "size": {**batch, "size": size + 1},
        "path": {**batch, "path": flipped},
    }
    forgeries = [forge.canonical({**genuine, "batch": b}) for b in moved.values()]
    forgeries += forge.batch_signed(
        batched, Ed25519PrivateKey.generate(), key_id=genuine["gateway_key_id"], recipient="XK"
    )
    topic = audit_topic(federation.prefix)
    offsets = {asyncio.run(forge.write(federation.bootstrap, topic, v)) for v in forgeries}
    expected = {(o, "bad_signature") for o in offsets}
    wait_for(
        lambda: expected <= listed_refused(federation),
        timeout_s=TIMEOUT_S,
        what="a checkpoint listing every moved or re-signed record as refused",
    )
    leaves = covered_leaves(federation)
    assert {forge.leaf(v) for v in records} <= leaves
    assert not {forge.leaf(v) for v in forgeries} & leaves


def json_field(value: bytes, name: str) -> object:
    """A field of a JSON object record, or None for anything else on the topic."""
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document.get(name) if isinstance(document, dict) else None


def test_a_truncated_bundle_is_refused_against_a_witnessed_checkpoint(
    federation: Federation, tmp_path: Path
) -> None:
    """Cut after an earlier checkpoint with the newer ones dropped, a bundle is consistent
    with itself; the witness's cosigned checkpoint (in the bundle, or given by the auditor
    when the cut also dropped those) names the truncation."""
    disclose(federation)
    wait_for(lambda: cosigned(federation), timeout_s=TIMEOUT_S, what="a first cosignature")
    first_size = max(note_size(n) for n in cosigned(federation))
    disclose(federation)
    disclose(federation)
    latest = wait_for(
        lambda: next((n for n in cosigned(federation) if note_size(n) > first_size + 1), None),
        timeout_s=TIMEOUT_S,
        what="a cosignature of the grown log",
    )
    witnessed = tmp_path / "witnessed.note"
    witnessed.write_bytes(latest)
    bundle = tmp_path / "audit.bundle"
    export(federation, bundle)
    whole = broker("audit", "verify", str(bundle), "--witnessed", str(witnessed))
    assert whole.returncode == 0, whole.stderr
    assert "cosigned by 1 witnesses (witness-1)" in whole.stdout

    header, *lines = bundle.read_bytes().splitlines()
    cut_at = next(
        i
        for i, line in enumerate(lines)
        if b'\\"from\\":' in line and f"\\\\n{first_size}\\\\n".encode() in line
    )
    cut, stripped = tmp_path / "cut.bundle", tmp_path / "stripped.bundle"
    cut.write_bytes(b"\n".join([header, *lines[: cut_at + 1]]) + b"\n")
    head = json.loads(header)
    head["witnessed"] = []
    stripped.write_bytes(b"\n".join([json.dumps(head).encode(), *lines[: cut_at + 1]]) + b"\n")

    caught = broker("audit", "verify", str(cut))
    assert caught.returncode == 11
    assert "truncated" in caught.stderr
    alone = broker("audit", "verify", str(stripped))
    assert alone.returncode == 0, alone.stderr
    refused = broker("audit", "verify", str(stripped), "--witnessed", str(witnessed))
    assert refused.returncode == 11
    assert "truncated" in refused.stderr


def test_a_checkpoint_that_forks_the_log_is_refused_by_the_witness(
    federation: Federation, tmp_path: Path
) -> None:
    """A stolen gateway key signs a second history at a size the witness has cosigned: the
    witness refuses it and raises the alert; an unregistered signer is refused too; honest
    checkpoints are still cosigned afterwards, and the fork is named by verify."""
    disclose(federation)
    size = wait_for(
        lambda: max((note_size(n) for n in cosigned(federation)), default=None),
        timeout_s=TIMEOUT_S,
        what="a first cosignature",
    )
    passphrase = read_passphrase(file=federation.passphrase_file(GATEWAY), env=None)
    stolen = forge.load_ed25519(federation.root / "keys" / GATEWAY / "signing.pem", passphrase)
    other_history = [forge.leaf(b"a record that never was %d" % i) for i in range(size)]
    origin = f"broker/{audit_topic(federation.prefix)}"
    now = dt.datetime.now(dt.UTC)
    fork = forge.checkpoint_note(origin, size, forge.root(other_history), now, stolen)
    stranger = forge.checkpoint_note(
        origin, size + 1, forge.root([*other_history, other_history[0]]), now,
        Ed25519PrivateKey.generate(),
    )  # fmt: skip
    topic = audit_topic(federation.prefix)
    for note, leaves in ((fork, other_history), (stranger, [*other_history, other_history[0]])):
        record = forge.checkpoint_record(note, first=0, leaves=leaves, through=0)
        asyncio.run(forge.write(federation.bootstrap, topic, record))
    wait_for(
        lambda: (
            metric(federation, WITNESS, 'xb_witness_refused_total{reason="inconsistent"}') == 1
            and metric(federation, WITNESS, 'xb_witness_refused_total{reason="unregistered"}') == 1
        ),
        timeout_s=TIMEOUT_S,
        what="the witness refusing both checkpoints",
    )
    disclose(federation)
    wait_for(
        lambda: any(note_size(n) > size for n in cosigned(federation)),
        timeout_s=TIMEOUT_S,
        what="the honest log cosigned after the fork",
    )
    assert forge.root(other_history) not in {note_root(n) for n in cosigned(federation)}
    assert ready(federation, WITNESS) == 200

    bundle = tmp_path / "audit.bundle"
    export(federation, bundle)
    verified = broker("audit", "verify", str(bundle))
    assert verified.returncode == 11
    assert "forked" in verified.stderr


def test_undecodable_records_never_leave_the_gateway_silently_healthy(
    federation: Federation,
) -> None:
    """A record with no value, one that is not UTF-8, and one whose header key is not UTF-8
    (which the Kafka client itself cannot decode: the transport hands it over marked) are each
    refused as malformed while the checkpointer stays up and the gateway ready."""
    topic = audit_topic(federation.prefix)
    asyncio.run(forge.write(federation.bootstrap, topic, None))
    asyncio.run(forge.write(federation.bootstrap, topic, b"\x80\x81 not UTF-8"))
    series = f'{REFUSED}{{reason_code="malformed"}}'
    wait_for(
        lambda: metric(federation, GATEWAY, series) == 2,
        timeout_s=TIMEOUT_S,
        what="both records refused",
    )
    assert ready(federation, GATEWAY) == 200

    asyncio.run(forge.write_undecodable_header(federation.bootstrap, topic, b"hostile"))

    wait_for(
        lambda: metric(federation, GATEWAY, series) == 3,
        timeout_s=TIMEOUT_S,
        what="the undecodable record refused",
    )
    assert ready(federation, GATEWAY) == 200
    assert metric(federation, GATEWAY, "xb_audit_checkpointer_up") == 1
