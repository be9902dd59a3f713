"""Compliance: discharge limits as versioned data, averaging and evaluation the regulator's way (imports core)."""
