"""PostgreSQL: the session, the embedded server and sandbox, the demo data, client programs."""
