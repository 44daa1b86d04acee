"""Schedules: when a playbook fires, in the schedule's own time zone.

- `cron`: cron expressions (cronsim, Debian cron's rules at daylight-saving changes)
- `blackout`: date and weekly windows in which nothing fires
- `spec`: a playbook's schedule checked and compiled (defaults resolved)
- `slots`: fire times (slots, keyed by their UTC instant): the next ones, ranges for catch-up
- `words`: a schedule in words
- `export`: crontab lines and systemd units for those who keep the OS's scheduler

The fire ledger and the daemon come on top of these; nothing here reads a
clock or a journal: every function is given its instants.
"""
