"""Alarm lifecycle, response plans, interlock commands, notifications and escalation."""
