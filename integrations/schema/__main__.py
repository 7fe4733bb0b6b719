"""``python -m integrations.schema`` regenerates the schema file."""

from integrations.schema import main

main()
