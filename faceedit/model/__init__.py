"""Networks only: parsers, generators, discriminators and the unified model (no I/O, no Qt)."""
