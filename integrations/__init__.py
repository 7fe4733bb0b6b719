"""Herald's shared domain: the integration-event model, entity-change messages, errors and store."""

import importlib.metadata


def herald_version() -> str:
    """Herald's version, as installed (``unknown`` when run from a source tree)."""
    try:
        return importlib.metadata.version("herald")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
