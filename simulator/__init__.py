"""A battery-plant simulator: realistic telemetry, named incidents."""
