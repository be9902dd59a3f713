"""Energy metering and ledgers per process, area and equipment."""
