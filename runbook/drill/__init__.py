"""Audited emergency drills: a real procedure rehearsed on a marked copy.

- `plan`: what a drill runs (injects, the procedure, the recovery) and the
  objectives it is measured against, with their defaults
- `copy`: the copy, made (template or dump), marked, dropped
- `objectives`: time to respond, mitigate and recover, per-step targets, RPO
- `runner`: one drill, from the copy to the scorecard, journaled
- `scorecard`: the drill as a report document (runbook.runreport renders it)
"""
