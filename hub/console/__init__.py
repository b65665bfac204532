"""The live operations console at `/`: throughput, latency, dead letters (replay, purge), the retry backlog,
parked events, overdue deadlines, unacknowledged urgent notifications and silent sources.

`hub.console.web.add_console(worker)` serves it from the worker's web server; `hub operators` manages who may
sign in. This package imports nothing heavy, so the CLI can register its commands cheaply.
"""
