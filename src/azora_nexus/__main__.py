"""`python -m azora_nexus` is the `azora` command."""

from azora_nexus.cli.main import run

run()
