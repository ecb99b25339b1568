"""Conformance suite for a needle-driver device behind any port (the simulator by default)."""
