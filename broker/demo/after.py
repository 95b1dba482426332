"""After delivery: what the demo does with views once they are stored, through the `broker`
commands an operator would run against the running exchange.

- **Onward sharing with the originator's consent.** The UK asks Serbia whether it may pass
  the route and the assessment of Serbia's route assessment to North Macedonia; Serbia
  grants it; the UK forwards exactly those fields, proven by Serbia's signature, and North
  Macedonia stores the forward.
- **Disclosure.** The UK proves to an auditor, offline, what Serbia sent it: a bundle that
  reveals one field of Serbia's route assessment under Serbia's signature and the gateway's
  attestation, checked with the registry alone.
- **Withdrawal.** The UK takes back its report to Kosovo, and Kosovo's adapter destroys it.
- **The sender's view.** What the UK's own journal says of every view it sent (`broker sent
  list`): receipted by its recipient, refused by the UK's adapter, or still waiting.

A part whose views never arrived (an accord not in force on the day the demo runs) is
skipped, saying why; every other part must succeed for `demo: OK`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from broker import errors
from broker.demo.federation import Federation
from broker.demo.tracker import Fate, Tracker, receipt_file

__all__ = ["AfterDelivery", "after_delivery"]

#: the scenario's steps these parts build on (broker.demo.scenario.scenario)
_REPORT, _ASSESSMENT = 0, 1
_FORWARDED: Final = "body.route_name,body.assessment"
_DISCLOSED: Final = "body.route_name"

Until = Callable[[float, Callable[[], bool], str], Awaitable[None]]


@dataclasses.dataclass
class AfterDelivery:
    """What each part did, one line each, in order."""

    lines: list[str] = dataclasses.field(default_factory=list)


async def after_delivery(
    federation: Federation, tracker: Tracker, until: Until, *, timeout_s: float
) -> AfterDelivery:
    """Play both parts; raises :class:`errors.AvailabilityError` naming the first that fails."""
    done = AfterDelivery()
    await _onward(federation, tracker, until, done, timeout_s=timeout_s)
    await _disclosure(federation, tracker, done)
    await _withdrawal(federation, tracker, until, done, timeout_s=timeout_s)
    await _sender_view(federation, done)
    return done


async def _onward(
    federation: Federation,
    tracker: Tracker,
    until: Until,
    done: AfterDelivery,
    *,
    timeout_s: float,
) -> None:
    view = _stored_view(tracker, _ASSESSMENT, "GB")
    if view is None:
        done.lines.append("onward sharing: skipped (Serbia's route assessment did not reach GB)")
        return
    request = await _queued(
        federation, "GB", "onward", "request", view, "--to", "MK", "--fields", _FORWARDED,
        "--authority", "MoI border police, Gevgelija",
        "--justification", "The same group moves people across the MK-RS border.",
    )  # fmt: skip
    await until(
        timeout_s,
        lambda: _delivered(federation, "RS", {"original_message": view}) is not None,
        "GB's onward request at RS",
    )
    grant = await _queued(federation, "RS", "onward", "grant", request, "--valid-days", "7")
    await until(
        timeout_s,
        lambda: _delivered(federation, "GB", {"request": request}) is not None,
        "RS's grant at GB",
    )
    forward = await _queued(federation, "GB", "onward", "forward", grant)
    await until(
        timeout_s,
        lambda: (federation.delivery_dir("MK") / f"{forward}.json").exists(),
        "GB's forward at MK",
    )
    await _receipted(federation, until, {"GB": (request, forward), "RS": (grant,)}, timeout_s)
    done.lines.append(
        f"onward sharing: GB asked RS ({request}), RS granted ({grant}), MK stored GB's forward "
        f"{forward}: {_FORWARDED} of {view}, proven by RS's signature"
    )


async def _disclosure(federation: Federation, tracker: Tracker, done: AfterDelivery) -> None:
    view = _stored_view(tracker, _ASSESSMENT, "GB")
    if view is None:
        done.lines.append("disclosure: skipped (Serbia's route assessment did not reach GB)")
        return
    bundle = federation.root / "evidence" / f"{view}.disclosure.json"
    bundle.parent.mkdir(mode=0o700, exist_ok=True)
    config = ("--config", str(federation.config_path("GB")))
    await _broker("disclose", view, "--fields", _DISCLOSED, "--out", str(bundle), *config)
    # the auditor's side: the bundle and the registry, no adapter, no Kafka
    registry = ("--registry", str(federation.registry_path))
    checked = json.loads(await _broker("disclosure", "verify", str(bundle), *registry, "--json"))
    if set(checked["disclosed"]) != {_DISCLOSED} or checked["sender"] != "RS":
        raise errors.AvailabilityError(f"the disclosure of {view} revealed {checked['disclosed']}")
    done.lines.append(
        f"disclosure: GB proved {_DISCLOSED} of {view} to an auditor offline: RS's "
        f"{checked['suite']} signature and the gateway's attestation verify; "
        f"{len(checked['withheld'])} fields stay withheld"
    )


async def _withdrawal(
    federation: Federation,
    tracker: Tracker,
    until: Until,
    done: AfterDelivery,
    *,
    timeout_s: float,
) -> None:
    view = _stored_view(tracker, _REPORT, "XK")
    if view is None:
        done.lines.append("withdrawal: skipped (the UK's report did not reach XK)")
        return
    stored = federation.delivery_dir("XK") / f"{view}.json"
    notice = await _queued(
        federation, "GB", "withdraw", view, "--reason", "superseded by a corrected report"
    )
    await until(timeout_s, lambda: not stored.exists(), "XK to destroy the withdrawn report")
    await _receipted(federation, until, {"GB": (notice,)}, timeout_s)
    done.lines.append(
        f"withdrawal: GB withdrew its report {view} ({notice}); XK destroyed it and kept why"
    )


async def _sender_view(federation: Federation, done: AfterDelivery) -> None:
    config = ("--config", str(federation.config_path("GB")))
    lines = (await _broker("sent", "list", "--json", *config)).decode().splitlines()
    views = [json.loads(line) for line in lines if line.strip()]
    states = Counter(
        f"receipted ({view['receipt']['status']})" if view["receipt"] else str(view["state"])
        for view in views
    )
    said = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    done.lines.append(f"GB's own record (broker sent list): {len(views)} views: {said}")


async def _receipted(
    federation: Federation, until: Until, sent: dict[str, tuple[str, ...]], timeout_s: float
) -> None:
    """Wait for the receipt of each view ``sent`` by each partner: the exchange is quiet
    before the demo stops the gateway, so its last checkpoint covers everything."""
    for sender, views in sent.items():
        for view in views:
            await until(
                timeout_s,
                lambda: receipt_file(federation.delivery_dir(sender), view) is not None,  # noqa: B023 - awaited here
                f"the receipt of {view} at {sender}",
            )


def _stored_view(tracker: Tracker, step: int, recipient: str) -> str | None:
    """The id of step ``step``'s view to ``recipient`` if it was stored there."""
    for row in tracker.rows:
        if (row.step, row.recipient) == (step, recipient) and row.message_id is not None:
            return row.message_id if row.fate in (Fate.STORED, Fate.RECEIPTED) else None
    return None


def _delivered(federation: Federation, partner: str, match: dict[str, Any]) -> Path | None:
    """The file in ``partner``'s delivery directory whose message body has ``match``'s items."""
    for path in federation.delivery_dir(partner).glob("*.json"):
        try:
            body = json.loads(path.read_bytes())["message"].get("body", {})
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        if all(body.get(k) == v for k, v in match.items()):
            return path
    return None


async def _queued(federation: Federation, partner: str, *args: str) -> str:
    """``broker ARGS --json --config <partner's>``: the one view it queued."""
    config = ("--config", str(federation.config_path(partner)))
    views = json.loads(await _broker(*args, "--json", *config, who=f" as {partner}"))["views"]
    return str(views[-1]["message_id"])


async def _broker(*args: str, who: str = "") -> bytes:
    """``broker ARGS``' standard output; a failure raises, naming the command."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "broker", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        why = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise errors.AvailabilityError(f"broker {' '.join(args[:2])}{who} failed: {why}")
    return out
