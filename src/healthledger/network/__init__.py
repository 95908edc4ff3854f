"""Running a consortium (ARCHITECTURE.md section 2, the ``network`` layer): planning
ports, starting and supervising NATS servers and peer processes, joining a peer from a
snapshot, admitting an organisation, reading the network's status and running traffic
over it, through one typed HTTP client (:mod:`healthledger.network.client`).

Nothing here parses a command line or prints: every operation takes its inputs as
arguments, reports progress through a ``say`` callable and fails with a
:class:`~healthledger.network.errors.NetworkError`.
"""
