"""Classroom mode: students trade live against the agent firms (``etsim classroom``).

- ``engine``: the live session (seats bound to firms, validated orders, the pace, leavers
  taken over by their agent, the order log) on a ``CarbonMarketModel``; no web code.
- ``replay``: rebuilds a recorded session from its order log.
- ``server``: the JSON API and the teacher's and students' pages (Flask).
"""
