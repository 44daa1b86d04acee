"""Runs queued in PostgreSQL and taken by workers on many hosts.

The queue is procrastinate's (its tables in a schema of their own beside the
journal's, in the journal's database: no other server). It carries jobs only:
what decides that a run happens once is the journal — a queued run's id is
chosen when it is queued, and its `run.start` row can be appended once — and,
for schedules, the fire ledger (runbook.schedule.ledger). procrastinate's
`lock` keeps one job of a (playbook, target) running at a time; its workers'
heartbeats tell a dead worker, whose run our reaper marks interrupted and
resumes or halts (`on_worker_loss`).
"""
