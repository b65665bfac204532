"""The live operations console at `/`: throughput, latency, dead letters (replay, purge), the retry backlog,
parked events, overdue deadlines, unacknowledged urgent notifications and silent sources.

The worker serves it from its own web server (`hub.console.web.add_console`), giving it what it reads;
`hub operators` manages who may sign in. This package imports nothing heavy, so the CLI can register its
commands cheaply.
"""
