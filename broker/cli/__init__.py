"""The ``broker`` command line: one module per command group, each a thin shell over the library.

Every command maps our errors to their documented exit codes and prints one clear line
(the full traceback with ``-v``). See docs/CLI.md for the exit codes.
"""

from __future__ import annotations

import sys

import click

from broker import __version__
from broker.cli import _app
from broker.cli import adapter as adapter_cli
from broker.cli import audit as audit_cli
from broker.cli import demo as demo_cli
from broker.cli import deploy as deploy_cli
from broker.cli import disclosure as disclosure_cli
from broker.cli import doctor as doctor_cli
from broker.cli import envelope as envelope_cli
from broker.cli import gateway as gateway_cli
from broker.cli import kafka as kafka_cli
from broker.cli import keys as keys_cli
from broker.cli import officers as officers_cli
from broker.cli import onward as onward_cli
from broker.cli import policy as policy_cli
from broker.cli import registry as registry_cli
from broker.cli import schemas as schemas_cli
from broker.cli import sending as sending_cli
from broker.cli import trust as trust_cli
from broker.cli import witness as witness_cli
from broker.cli.s62 import s62_export_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="broker")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
def cli(verbose: bool) -> None:
    """Secure cross-border intelligence exchange on Kafka."""
    _app.configure_logging(verbose=verbose)


# Command groups register here, one line each.
cli.add_command(kafka_cli.group)
cli.add_command(schemas_cli.group)
cli.add_command(policy_cli.group)
cli.add_command(demo_cli.command)
cli.add_command(deploy_cli.group)
cli.add_command(doctor_cli.command)
cli.add_command(keys_cli.group)
cli.add_command(registry_cli.group)
cli.add_command(envelope_cli.seal_command)
cli.add_command(envelope_cli.open_command)
cli.add_command(envelope_cli.group)
cli.add_command(adapter_cli.adapter_group)
cli.add_command(sending_cli.send_command)
cli.add_command(sending_cli.release_command)
cli.add_command(sending_cli.withdraw_command)
cli.add_command(sending_cli.correct_command)
cli.add_command(onward_cli.onward_group)
cli.add_command(sending_cli.status_command)
cli.add_command(sending_cli.sent_group)
cli.add_command(adapter_cli.inbox_group)
cli.add_command(officers_cli.officers_group)
cli.add_command(disclosure_cli.disclose_command)
cli.add_command(disclosure_cli.disclosure_group)
cli.add_command(gateway_cli.gateway_group)
cli.add_command(gateway_cli.quarantine_group)
audit_cli.group.add_command(s62_export_command)
cli.add_command(audit_cli.group)
cli.add_command(trust_cli.group)
cli.add_command(witness_cli.witness_group)


def main() -> None:
    """Console-script entry point: run the CLI and turn our errors into exit codes."""
    sys.exit(_app.run(cli))
