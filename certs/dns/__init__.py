"""DNS providers for DNS-01: one contract (base.py), one registry (registry.py)."""
