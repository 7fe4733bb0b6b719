"""Herald's HTTP API: OpsRamp-compatible integration events, activity log and token endpoint."""
