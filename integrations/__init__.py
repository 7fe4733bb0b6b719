"""Herald's shared domain: the integration-event model, entity-change messages, errors and store."""
