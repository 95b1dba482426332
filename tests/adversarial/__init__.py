"""The adversarial suite: the exchange attacked from outside, by a hostile partner.

The attacker has its own keys (XK's), write access to its own topics, and on the embedded
broker (no ACLs) to every topic. Its client is independent of the code under test:
:mod:`.rawkafka` writes and reads raw record batches with aiokafka directly, and :mod:`.wire`
builds envelopes, delivery frames and quarantine records from the documents alone. Neither,
nor any test here, imports ``broker.envelope``, ``broker.pipeline`` or ``broker.crypto``
(``tests/unit/test_adversarial_independence.py`` holds them to it); the daemons and the CLI
are the system under test. See README.md for adding an attack.
"""
