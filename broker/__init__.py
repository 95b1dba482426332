"""broker: a secure message broker for cross-border intelligence exchange on Kafka.

Partner agencies run an adapter that signs and encrypts structured intelligence onto Kafka;
a policy gateway enforces each bilateral accord on signed labels before delivery; auditors
replay the signed log. See README.md and docs/ for the whole picture.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
