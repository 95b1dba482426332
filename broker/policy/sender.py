"""The sending adapter's decision: full content in, the decision and the recipient's view out.

The adapter decides on the labels of the *full* content, removes the categories the accord
says to redact, and then checks the view exactly as the gateway will, on the view's own
labels. If the two ever disagreed (a redaction that left a category behind), the view is
refused here rather than at the gateway: the sender fails closed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import NoReturn

from broker.ids import PartnerCode
from broker.policy.engine import Decision, Outcome, Request, evaluate, evaluate_content
from broker.policy.model import Accord
from broker.schema import Labels, Message, labels_of, redact

__all__ = ["RecipientView", "decide_for_recipient"]


@dataclasses.dataclass(frozen=True)
class RecipientView:
    """The decision for one recipient and, unless denied, the (redacted) message they receive."""

    decision: Decision
    view: Message | None
    #: the view's labels, as the gateway will read them (None when there is no view)
    labels: Labels | None = None

    def __bool__(self) -> NoReturn:
        raise TypeError("a RecipientView is not a boolean; use .decision.permits")


def decide_for_recipient(
    accord: Accord,
    message: Message,
    sender: PartnerCode,
    recipient: PartnerCode,
    *,
    now: dt.datetime,
    counters: Mapping[str, int],
    labels: Labels | None = None,
) -> RecipientView:
    """Decide on ``message`` for ``recipient`` and build the view they may receive.

    ``labels`` are the message's own (``labels_of(message)``) where the caller has them
    already: one message sent to several recipients is walked once.
    """
    full = Request(
        labels=labels_of(message) if labels is None else labels, sender=sender, recipient=recipient
    )
    decision = evaluate_content(accord, full, now=now, counters=counters)
    if not decision.permits:
        return RecipientView(decision=decision, view=None)
    view = redact(message, decision.redact) if decision.redact else message
    # redact() returns the message itself when it removed nothing: its labels are known
    labels = full.labels if view is message else labels_of(view)
    as_gateway = evaluate(
        accord,
        Request(labels=labels, sender=sender, recipient=recipient),
        now=now,
        counters=counters,
    )
    if not as_gateway.permits:
        refused = Decision(
            Outcome.DENY,
            as_gateway.accord,
            as_gateway.accord_version,
            as_gateway.flow,
            as_gateway.rule_ids,
            ("the redacted view would still be refused by the gateway", *as_gateway.reasons),
        )
        return RecipientView(decision=refused, view=None)
    return RecipientView(decision=decision, view=view, labels=labels)
