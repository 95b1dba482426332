"""How long a receiver keeps a view, and why: the strictest rule that applies to it.

Four rules can bound a stored view's life, and the earliest end wins:

- ``destroy-by``: an H3 handling condition, the originator's deadline for every copy;
- ``expires``: the message's own expiry;
- ``accord``: the ``retention_days`` of the accord flow that carried it (the obligation the
  recipient accepted when it signed the accord);
- ``local``: the receiver's own maximum (``store.retention_days``), which may be stricter
  than any accord but never extends one.

The reason is kept beside the view, so an operator (``broker inbox show``) and an auditor see
which rule decided and when, not only the date. Pure: the caller passes the time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from broker.clock import format_instant
from broker.policy import Accord, Flow
from broker.schema import Message
from broker.schema.handling import DestroyBy

__all__ = ["Retention", "RetentionRule", "retention_for"]


class RetentionRule(enum.StrEnum):
    """Which rule ended a view's retention (on a tie, the one listed first)."""

    DESTROY_BY = "destroy-by"
    EXPIRES = "expires"
    ACCORD = "accord"
    LOCAL = "local"


@dataclasses.dataclass(frozen=True, slots=True)
class Retention:
    """Until when a view is kept, the rule that decided it, and that rule in words."""

    until: dt.datetime
    rule: RetentionRule
    reason: str

    def explain(self) -> str:
        """``kept until 2028-11-27T12:00:00Z: <reason>``."""
        return f"kept until {format_instant(self.until)}: {self.reason}"


def retention_for(
    message: Message,
    *,
    accord: Accord,
    flow: Flow,
    received_at: dt.datetime,
    max_retention: dt.timedelta,
) -> Retention:
    """The retention of ``message``, received at ``received_at`` over ``flow`` of ``accord``.

    The result may already have ended (a deadline in the past): the caller refuses such a
    message rather than store what must already be destroyed.
    """
    days = flow.handling.retention_days
    candidates = [
        Retention(
            deadline,
            RetentionRule.DESTROY_BY,
            f"the originator's handling condition destroy-by {format_instant(deadline)}",
        )
        for deadline in destroy_by(message)
    ]
    if message.expires is not None:
        candidates.append(
            Retention(
                message.expires,
                RetentionRule.EXPIRES,
                f"the message expires at {format_instant(message.expires)}",
            )
        )
    candidates.append(
        Retention(
            received_at + dt.timedelta(days=days),
            RetentionRule.ACCORD,
            f"flow {flow.id} of accord {accord.accord} v{accord.version} keeps at most {days} days",
        )
    )
    candidates.append(
        Retention(
            received_at + max_retention,
            RetentionRule.LOCAL,
            f"this adapter keeps at most {_days(max_retention)} (store.retention_days)",
        )
    )
    order = list(RetentionRule)
    return min(candidates, key=lambda r: (r.until, order.index(r.rule)))


def destroy_by(message: Message) -> list[dt.datetime]:
    """The deadlines of ``message``'s H3 ``destroy-by`` conditions."""
    return [c.deadline for c in message.handling_conditions if isinstance(c, DestroyBy)]


def _days(span: dt.timedelta) -> str:
    if span % dt.timedelta(days=1):
        return f"{span.total_seconds():g} seconds"
    count = span // dt.timedelta(days=1)
    return f"{count} day{'' if count == 1 else 's'}"
