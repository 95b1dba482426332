"""A partner's adapter: the only place plaintext exists.

Sending: a message (Python API :meth:`Adapter.submit`, the spool directory, or ``broker send``)
is decided, redacted and sealed per recipient by :mod:`broker.pipeline.send`, journalled
durably (:class:`SendJournal`), then produced to ``outbox.<me>`` until acknowledged.
Receiving: deliveries from ``inbox.<me>`` are verified by :mod:`broker.pipeline.receive`,
stored once in the encrypted :class:`broker.store.InboxStore`, committed, and receipted.
docs/ADAPTER.md is the operator's guide.
"""

from __future__ import annotations

from broker.adapter._setup import AdapterKeys, load_keys, load_trust
from broker.adapter.core import Adapter, ReceiveVerdict
from broker.adapter.daemon import (
    AdapterDaemon,
    Connection,
    build_adapter,
    journal_beside,
    journal_path,
    serve_config,
)
from broker.adapter.journal import JournalEntry, SendJournal
from broker.adapter.outputs import DeliveryDir, Webhook
from broker.adapter.spool import (
    Spool,
    Submission,
    parse_submission,
    write_submission,
    write_submissions,
)

__all__ = [
    "Adapter",
    "AdapterDaemon",
    "AdapterKeys",
    "Connection",
    "DeliveryDir",
    "JournalEntry",
    "ReceiveVerdict",
    "SendJournal",
    "Spool",
    "Submission",
    "Webhook",
    "build_adapter",
    "journal_beside",
    "journal_path",
    "load_keys",
    "load_trust",
    "parse_submission",
    "serve_config",
    "write_submission",
    "write_submissions",
]
