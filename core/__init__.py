"""Shared kernel of ehs-monitor: settings, database, migrations, plant registry and vocabulary."""
