"""Running a playbook over many targets at once.

- `fanout`: at most `forks` targets together, at most `per_server` on one
  server; Ctrl-C interrupts every target's statement and journals each.
"""
