"""The running daemon's accord: keep the last good version, refuse bad reloads and rollbacks."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import structlog

from broker.errors import PolicyError
from broker.policy.loader import load_accord
from broker.policy.model import Accord

__all__ = ["AccordHolder", "ReloadResult"]

_log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``accepted`` says whether the new file replaced the old accord."""

    accepted: bool
    accord: Accord
    reason: str

    def __bool__(self) -> bool:
        raise TypeError("a ReloadResult is not a boolean; use .accepted")


class AccordHolder:
    """Holds the accord a daemon decides with; a bad file never replaces a good accord.

    A reload is refused when the file does not load, names another accord, carries a lower
    version (rollback to a laxer accord), or the same version with different rules
    (accords are immutable versions: change the rules, raise the version).
    """

    def __init__(
        self, accord: Accord, *, loader: Callable[[pathlib.Path], Accord] = load_accord
    ) -> None:
        self._accord = accord
        self._loader = loader

    @classmethod
    def from_file(
        cls, path: pathlib.Path, *, loader: Callable[[pathlib.Path], Accord] = load_accord
    ) -> AccordHolder:
        """Load the first accord; a bad file here is fatal (raises PolicyError).

        ``loader`` is how every file is read: strict daemons pass one that also checks
        co-signatures (``broker.cosign.load_signed_accord`` with their registry and clock).
        """
        return cls(loader(path), loader=loader)

    @property
    def accord(self) -> Accord:
        """The accord in force for new decisions."""
        return self._accord

    def reload(self, path: pathlib.Path) -> ReloadResult:
        """Load ``path`` and switch to it if acceptable; otherwise keep the current accord."""
        current = self._accord
        try:
            candidate = self._loader(path)
        except PolicyError as exc:
            return self._refuse(path, str(exc))
        if candidate.accord != current.accord:
            return self._refuse(
                path, f"{path} holds accord {candidate.accord}, not {current.accord}"
            )
        if candidate.version < current.version:
            return self._refuse(
                path,
                f"{path} is version {candidate.version}, older than the "
                f"version {current.version} in force (rollback refused)",
            )
        if candidate.version == current.version:
            if candidate == current:
                return ReloadResult(accepted=False, accord=current, reason="unchanged")
            return self._refuse(
                path, f"{path} changes version {current.version} in place; raise the version"
            )
        self._accord = candidate
        _log.info(
            "accord reloaded",
            accord=candidate.accord,
            version=candidate.version,
            previous_version=current.version,
        )
        return ReloadResult(
            accepted=True, accord=candidate, reason=f"now version {candidate.version}"
        )

    def _refuse(self, path: pathlib.Path, reason: str) -> ReloadResult:
        _log.warning(
            "accord reload refused; keeping the current accord",
            path=str(path),
            accord=self._accord.accord,
            version=self._accord.version,
            reason=reason,
        )
        return ReloadResult(accepted=False, accord=self._accord, reason=reason)
