"""Notifications of the alarm engine: who is told what, over which channel, and how it is escalated.

``outbox`` turns outbox rows (queued by the alarm service in the same transaction as their cause) into
deliveries; ``notifier`` runs them (part of ``python -m alerts``); ``notify`` (apprise) and ``webpush`` send;
``messages`` writes the text; ``escalation`` re-notifies until acknowledged; ``links`` signs the links in
messages; ``notify_config`` holds channels, policies, rosters and subscriptions as data. This subpackage sits
on top of the alarm service (``alerts.service``), which never imports it.
"""
