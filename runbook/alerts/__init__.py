"""Alerts: incidents, escalation policies, notification channels and their deliveries."""
