"""The running hub, laid out by role: the pipeline (ingest, enrich, route, deliver) in the modules here, beside
the settings, errors, metrics and the messages between stages; the stream runtime that runs it (`runtime`); the
case store (`store`); the operations console (`console`); reports (`reports`); the `hub` command (`cli`); and
the tools for people, apart from production code (`tools`).
"""
