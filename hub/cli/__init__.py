"""The `hub` command, a module per command group: running the hub (`running`: `hub worker`, `hub up`),
publishing agency events (`publish`), reading what the hub writes (`queue`, `outbound`), keys (`keys`), dead
letters (`dead_letters`: `hub dlq`), parked events (`parked`), erasure (`victims`), the retention schedule
(`retention`) and schema releases (`schemas`); `main` assembles them, with the console's `hub operators`, the
reports' `hub report` and the tools' `hub bench` and `hub simulate`. Each module imports little at load, so
`hub --help` is quick; a command imports what it needs when it runs.
"""
