-- The scheduler (runbook.schedule): its fire ledger and pauses. Rows mirror
-- the journal's events, as the others do; a fire's id is its slot's identity
-- (one row per schedule, target and slot, or per range of slots), so of two
-- schedulers inserting the same slot, one gets the unique violation and does
-- not fire. Heartbeats are liveness, not history: each scheduler's row is
-- upserted in place, outside the chains, and `journal verify` leaves it be.

CREATE TABLE fires (
    id text PRIMARY KEY,
    playbook text NOT NULL,
    playbook_path text NOT NULL,
    schedule text NOT NULL,
    target text NOT NULL,
    slot text NOT NULL,
    slot_last text,
    count integer NOT NULL,
    status text NOT NULL,
    reason text,
    late double precision,
    run_id text,
    scheduler text,
    claimed_at text NOT NULL,
    ended_at text,
    run_status text
);
CREATE INDEX fires_slot ON fires (playbook_path, schedule, target, slot);
CREATE INDEX fires_status ON fires (status);

CREATE TABLE pauses (
    id text PRIMARY KEY,
    playbook text NOT NULL,
    playbook_path text NOT NULL,
    target text NOT NULL,
    paused integer NOT NULL,  -- 0 or 1, as in the SQLite journal and the events
    by text NOT NULL,
    at text NOT NULL,
    reason text
);
CREATE INDEX pauses_of ON pauses (playbook_path);

CREATE TABLE heartbeats (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at text NOT NULL,
    last_tick text NOT NULL,
    stopped_at text,
    note text
);
