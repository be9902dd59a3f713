"""Hazardous-waste catalogue, containers, ledger and manifests."""
