-- A drill's process (host, pid and its start time: a drill whose process is
-- gone is reconciled, its copy dropped), and the step a step-level approval
-- is for (NULL: the playbook's).

ALTER TABLE drills ADD COLUMN pid integer;
ALTER TABLE drills ADD COLUMN pid_started double precision;
ALTER TABLE approvals ADD COLUMN step text;
