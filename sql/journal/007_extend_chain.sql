-- The journal-wide chain (stream '') extended by the server, in the append's
-- last statement before its COMMIT (runbook.journal.postgres): its row in
-- `chains` is then locked for microseconds, not across a client round trip.
-- Nearly every batch of a fleet's records ends some run and so seals it on
-- this chain; with the client hashing, the writers waited on each other here.
--
-- The client computes each event's record digest (runbook.journal.hashing:
-- the canonical JSON of what it writes); the function chains them exactly as
-- hashing.chain does: hash = hex(SHA-256(ASCII of prev_hash || digest)), the
-- first's prev_hash 64 zeros. `runbook journal verify` recomputes it all.
-- The tables resolve through the caller's search_path: the journal's schema.

CREATE FUNCTION extend_chain(
    p_stream text,
    p_at text[],
    p_run_id text[],
    p_kind text[],
    p_payload text[],
    p_digest text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := coalesce(cardinality(p_digest), 0);
    v_length bigint;
    v_head text;
    v_prev text[] := '{}';
    v_hash text[] := '{}';
BEGIN
    IF coalesce(cardinality(p_at), 0) <> v_count
        OR coalesce(cardinality(p_run_id), 0) <> v_count
        OR coalesce(cardinality(p_kind), 0) <> v_count
        OR coalesce(cardinality(p_payload), 0) <> v_count THEN
        RAISE EXCEPTION 'extend_chain: % digests but % at, % run_id, % kind, % payload',
            v_count, cardinality(p_at), cardinality(p_run_id), cardinality(p_kind),
            cardinality(p_payload);
    END IF;
    -- The head, locked until COMMIT; a new chain's row made first (two
    -- appends making it at once: one waits for the other's, then locks it).
    SELECT length, head INTO v_length, v_head FROM chains WHERE stream = p_stream FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO chains (stream, length, head) VALUES (p_stream, 0, repeat('0', 64))
            ON CONFLICT (stream) DO NOTHING;
        SELECT length, head INTO v_length, v_head FROM chains WHERE stream = p_stream FOR UPDATE;
    END IF;
    IF v_count = 0 THEN
        RETURN v_length;
    END IF;
    FOR i IN 1 .. v_count LOOP
        v_prev := v_prev || v_head;
        v_head := encode(sha256(convert_to(v_head || p_digest[i], 'UTF8')), 'hex');
        v_hash := v_hash || v_head;
    END LOOP;
    INSERT INTO events (stream, pos, at, run_id, kind, payload, prev_hash, hash)
        SELECT p_stream, v_length + e.i, e.at, e.run_id, e.kind, e.payload, e.prev, e.hash
        FROM unnest(p_at, p_run_id, p_kind, p_payload, v_prev, v_hash)
            WITH ORDINALITY AS e (at, run_id, kind, payload, prev, hash, i)
        ORDER BY e.i;
    UPDATE chains SET length = v_length + v_count, head = v_head WHERE stream = p_stream;
    RETURN v_length + v_count;
END
$$;
