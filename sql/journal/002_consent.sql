-- Who let a run on a protected target (or an emergency) start: `consent` on
-- the run (JSON text); standing authorizations for runs nobody attends
-- (runbook authorize), each bound to the sha256 of the playbook with its
-- includes and SQL files. Rows mirror the journal's events, as the others do.

ALTER TABLE runs ADD COLUMN consent text;

CREATE TABLE authorizations (
    id text PRIMARY KEY,
    playbook text NOT NULL,
    playbook_path text NOT NULL,
    digest text NOT NULL,
    target text NOT NULL,
    granted_by text NOT NULL,
    granted_at text NOT NULL,
    reason text,
    revoked_by text,
    revoked_at text,
    revoke_reason text
);
CREATE INDEX authorizations_of ON authorizations (playbook, target);
