-- Drills (runbook.drill): a procedure rehearsed on a marked copy of a target,
-- with its objectives' results; and its findings, corrective actions and
-- sign-offs. Rows mirror the journal's events, as the others do.

CREATE TABLE drills (
    id text PRIMARY KEY,
    playbook text NOT NULL,
    playbook_path text NOT NULL,
    exercise text NOT NULL,
    target text NOT NULL,
    copy_db text NOT NULL,
    copy_method text NOT NULL,
    operator text NOT NULL,
    os_user text NOT NULL,
    host text NOT NULL,
    participants text,
    started_at text NOT NULL,
    inject_at text,
    ended_at text,
    status text NOT NULL,
    run_ids text,
    objective_results text,
    rpo_s double precision,
    kept integer NOT NULL,
    reason text
);
CREATE INDEX drills_of ON drills (playbook_path, started_at);
CREATE TABLE drill_notes (
    id text PRIMARY KEY,
    drill_id text NOT NULL,
    kind text NOT NULL,
    text text NOT NULL,
    owner text,
    due text,
    by text NOT NULL,
    at text NOT NULL
);
CREATE INDEX drill_notes_of ON drill_notes (drill_id, at);
