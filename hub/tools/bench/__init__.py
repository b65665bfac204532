"""`hub bench`: how fast the hub carries agency events to the unit queues, measured end to end.

A tool for people, not production code. One run starts everything it measures and stops it again: an embedded
Tansu broker on a free loopback port, a case store in a temporary directory (SQLite, or a scratch PostgreSQL
database) migrated and bulk-loaded with `--cases` notifiable cases (`store`), and one real `hub worker` process
(with `--workers N`, then N of them in one consumer group, on a fresh broker and an equal store). Events come
from `hub.tools.traffic` (the same generator as `hub simulate`) and are validated, encoded and signed before the
clock starts (`events`), so the publisher is not what is measured. `measuring` stamps what comes out
at the far end, `run` sets up and runs the mode asked for (throughput, rate, backlog), `report` turns it into the
table and the last line, `command` is the `hub bench` command, and `bare_loop` is the plain aiokafka loop the hub
is compared with, in a process of its own.
"""
