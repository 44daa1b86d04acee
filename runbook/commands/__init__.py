"""One module per CLI command; each exposes a function that returns an exit code."""
