"""runbook: a declarative runbook executor for PostgreSQL operations."""

__version__ = "0.1.0"
