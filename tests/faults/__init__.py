"""Fault-injection tests: real workers, Redis and sinks, with crashes and outages injected."""
