"""The demo: its organisations and people (:mod:`.organisations`) and the platform's
simulated traffic (:mod:`.traffic`: staff registrations, a contract upgrade, a
deliberate revocation, and live rounds of the applications' traffic).

A layer of its own between ``network`` and ``node``: the node founds whatever
consortium it is given; the demo's commands pass this plan in.
"""
