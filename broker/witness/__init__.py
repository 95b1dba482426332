"""The witness daemon (``broker witness run``): a partner's independent check that the audit
log never shows two histories.

:func:`serve_witness` is the daemon's ``serve(stop)``: it follows the audit topic, proves each
new checkpoint consistent with everything it has seen (:class:`broker.audit.LogView`), keeps
that view across restarts (:class:`WitnessState`), and publishes a C2SP cosignature/v1 of the
newest consistent checkpoint on the witness topic. docs/AUDIT.md has the formats.
"""

from __future__ import annotations

from broker.witness.daemon import WitnessMetrics, serve_witness
from broker.witness.state import WitnessState

__all__ = ["WitnessMetrics", "WitnessState", "serve_witness"]
