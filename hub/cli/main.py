"""The `hub` command: the app, assembled from the command groups of hub/cli/, the console's and the reports'
(the order here is the order `hub --help` lists them in), and `main`, the console script."""

from __future__ import annotations

import typer

from hub.cli.dead_letters import dlq_app
from hub.cli.keys import keys_app
from hub.cli.outbound import outbound_app
from hub.cli.parked import parked_app
from hub.cli.publish import publish
from hub.cli.queue import queue_app
from hub.cli.retention import retention_app
from hub.cli.running import up, worker
from hub.cli.schemas import schemas_app
from hub.cli.victims import victims_app
from hub.console.cli import operators_app
from hub.reports.cli import report_app
from hub.tools.bench.command import bench_command
from hub.tools.simulate import simulate_command

app = typer.Typer(
    help="The victim contact integration hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(worker)
app.command()(up)
app.command()(publish)
app.command("bench")(bench_command)
app.command("simulate")(simulate_command)
app.add_typer(queue_app, name="queue")
app.add_typer(outbound_app, name="outbound")
app.add_typer(schemas_app, name="schemas")
app.add_typer(operators_app, name="operators")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(parked_app, name="parked")
app.add_typer(victims_app, name="victims")
app.add_typer(report_app, name="report")
app.add_typer(retention_app, name="retention")


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as error:  # HUB_* settings that do not hold: say which and why, not a traceback
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            named = f"HUB_{where.upper()}: " if where else ""
            typer.echo(f"hub: {named}{problem['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
