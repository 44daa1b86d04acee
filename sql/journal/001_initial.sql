-- The journal's tables in PostgreSQL (runbook.journal.postgres), in the schema
-- the inventory names (search_path is set to it). Same columns as the SQLite
-- journal; JSON columns are text, so that what is hashed is what is stored.
-- A migration is only ever added, never changed.

CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE runs (
    id text PRIMARY KEY,
    playbook text NOT NULL,
    playbook_path text,
    playbook_sha256 text,
    operator text,
    host text,
    pid integer,
    pid_started double precision,
    mode text NOT NULL,
    target text,
    target_dsn text,
    vars text,
    started_at text NOT NULL,
    ended_at text,
    status text NOT NULL,
    exit_code integer,
    severity text,
    reason text,
    parent_run text,
    counts text,
    extra text,
    selection text,
    forced text,
    -- the run a resume or a rollback continues: unique, so a run is continued once
    continues text UNIQUE
);
CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX runs_running ON runs (host) WHERE status = 'running';

-- Each run's events form a chain of their own (stream = the run's id); the
-- rest (incidents, deliveries, checkpoints, and one seal per ended run with
-- its chain's length and head) form the journal-wide chain (stream ''). So
-- runs on many hosts append at once, each waiting only on its own chain.
CREATE TABLE chains (
    stream text PRIMARY KEY,
    length bigint NOT NULL,
    head text NOT NULL
);

CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    stream text NOT NULL,
    pos bigint NOT NULL,
    at text NOT NULL,
    run_id text,
    kind text NOT NULL,
    payload text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    UNIQUE (stream, pos)
);
CREATE INDEX events_run ON events (run_id, seq);

CREATE TABLE incidents (
    id bigserial PRIMARY KEY,
    key text NOT NULL,
    playbook text,
    gate text,
    target text,
    policy text,
    severity text NOT NULL,
    status text NOT NULL,
    title text,
    message text,
    opened_at text NOT NULL,
    updated_at text NOT NULL,
    acknowledged_at text,
    acknowledged_by text,
    resolved_at text,
    resolved_by text,
    resolution text,
    occurrences integer NOT NULL DEFAULT 1,
    last_run text,
    level integer NOT NULL DEFAULT 0,
    next_at text,
    repeats integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX incidents_open_key ON incidents (key) WHERE status <> 'resolved';

CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    incident_id bigint,
    run_id text,
    channel text NOT NULL,
    event text NOT NULL,
    level integer,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    error text,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    dedupe text UNIQUE
);

CREATE TABLE attempts (
    delivery_id bigint NOT NULL REFERENCES deliveries (id),
    attempt integer NOT NULL,
    at text NOT NULL,
    ok integer NOT NULL,
    detail text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Events are append-only: no UPDATE, DELETE or TRUNCATE. (Whoever owns the
-- table can drop the trigger; `runbook journal verify` and signed checkpoints
-- are what catch that.)
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the runbook journal is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
