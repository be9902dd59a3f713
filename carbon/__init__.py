"""Emission factors, carbon ledgers and product footprints."""
