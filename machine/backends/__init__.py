"""The vendor adapters: each module wraps one library behind a port of machine.ports."""
