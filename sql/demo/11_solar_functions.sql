-- 11_solar_functions.sql - constraint monitoring and emergency rollback
-- functions of the solar panel production system.
--
-- All functions are plpgsql (or plain SQL without table references) so the
-- file loads before the views and data. Dynamic SQL quotes identifiers with
-- format('%I'); every table lives in schema public.
--
-- run_constraint_health_check() is a FUNCTION (SELECT * FROM ...), not a
-- procedure: PostgreSQL cannot have a procedure and a function with the same
-- name and arguments, and the function form also returns what it recorded.
-- `CALL run_constraint_health_check()` (constraint manual) therefore fails with
-- "run_constraint_health_check() is not a procedure"; use SELECT.

-- ---------------------------------------------------------------------------
-- Labels and classification helpers
-- ---------------------------------------------------------------------------

CREATE FUNCTION constraint_health_label(p_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status
        WHEN 'HEALTHY'   THEN '🟢 HEALTHY'
        WHEN 'ATTENTION' THEN '🟠 ATTENTION'
        WHEN 'WARNING'   THEN '🟡 WARNING'
        WHEN 'CRITICAL'  THEN '🔴 CRITICAL'
        ELSE '⚪ NO DATA'
    END
$$;
COMMENT ON FUNCTION constraint_health_label(text) IS
    'HEALTHY/ATTENTION/WARNING/CRITICAL -> the dashboard label with its emoji (🟢 HEALTHY, 🟠 ATTENTION, 🟡 WARNING, 🔴 CRITICAL).';

CREATE FUNCTION constraint_performance_impact(p_ms numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_ms IS NULL THEN '⚪ NO DATA'
        WHEN p_ms > 1000  THEN '🔴 HIGH IMPACT'
        WHEN p_ms >= 500  THEN '🟡 MEDIUM IMPACT'
        WHEN p_ms >= 100  THEN '🟠 LOW IMPACT'
        ELSE '🟢 MINIMAL IMPACT'
    END
$$;
COMMENT ON FUNCTION constraint_performance_impact(numeric) IS
    'Average check time in ms -> impact label: < 100 MINIMAL, 100-500 LOW, 500-1000 MEDIUM, > 1000 HIGH.';

CREATE FUNCTION constraint_health_status(p_violations bigint, p_critical integer,
                                         p_warning integer, p_attention integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_violations >= p_critical  THEN 'CRITICAL'
        WHEN p_violations >= p_warning   THEN 'WARNING'
        WHEN p_violations >= p_attention THEN 'ATTENTION'
        ELSE 'HEALTHY'
    END
$$;

CREATE FUNCTION constraint_violation_severity(p_violations bigint, p_critical integer,
                                              p_warning integer, p_attention integer)
RETURNS constraint_severity
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE
        WHEN p_violations >= p_critical  THEN 'CRITICAL'
        WHEN p_violations >= p_warning   THEN 'HIGH'
        WHEN p_violations >= p_attention THEN 'MEDIUM'
        ELSE 'LOW'
    END)::constraint_severity
$$;

-- VALID / NOT VALID / MISSING (dropped, e.g. rolled back) / RULE ONLY (no constraint)
CREATE FUNCTION constraint_state(p_table_name text, p_constraint_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_valid boolean;
BEGIN
    IF p_constraint_name IS NULL THEN
        RETURN 'RULE ONLY';
    END IF;
    SELECT c.convalidated INTO v_valid
    FROM pg_constraint c
    WHERE c.conrelid = to_regclass(format('public.%I', p_table_name))
      AND c.conname = p_constraint_name;
    IF NOT FOUND THEN
        RETURN 'MISSING';
    END IF;
    RETURN CASE WHEN v_valid THEN 'VALID' ELSE 'NOT VALID' END;
END
$$;

-- ---------------------------------------------------------------------------
-- Rule evaluation (shared by the violation, health-check and test functions)
-- ---------------------------------------------------------------------------

CREATE FUNCTION evaluate_constraint_rules(p_table_name text DEFAULT NULL)
RETURNS TABLE (
    constraint_name     text,
    table_name          text,
    pg_constraint_name  text,
    rollback_name       text,
    constraint_state    text,
    violation_count     bigint,
    rows_checked        bigint,
    sample_keys         text,
    elapsed_ms          numeric,
    description         text,
    threshold_critical  integer,
    threshold_warning   integer,
    threshold_attention integer,
    violation_predicate text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r        record;
    v_def    text;
    v_pred   text;
    v_start  timestamptz;
    v_count  bigint;
    v_rows   bigint;
    v_sample text;
BEGIN
    FOR r IN
        SELECT c.constraint_name AS cname, c.table_name AS tname,
               c.pg_constraint_name AS pgname, c.rollback_name AS rbname,
               c.business_rule, c.key_column, c.description AS descr,
               c.violation_threshold_critical AS t_crit,
               c.violation_threshold_warning AS t_warn,
               c.violation_threshold_attention AS t_attn,
               rc.constraint_definition AS rc_def
        FROM constraint_monitoring_config c
        LEFT JOIN rollback_config rc
               ON rc.table_name = c.table_name AND rc.pg_constraint_name = c.pg_constraint_name
        WHERE c.is_active
          AND (p_table_name IS NULL OR c.table_name = p_table_name)
        ORDER BY c.table_name, c.constraint_name
    LOOP
        -- the recorded definition survives a rollback; fall back to the catalog
        v_def := r.rc_def;
        IF v_def IS NULL AND r.pgname IS NOT NULL THEN
            SELECT regexp_replace(pg_get_constraintdef(pc.oid), '\s+NOT VALID$', '') INTO v_def
            FROM pg_constraint pc
            WHERE pc.conrelid = to_regclass(format('public.%I', r.tname)) AND pc.conname = r.pgname;
        END IF;

        v_pred := NULL;
        IF v_def LIKE 'CHECK %' THEN
            -- a CHECK passes when its expression is TRUE or NULL
            v_pred := format('NOT COALESCE(%s, true)', substr(v_def, 7));
        END IF;
        IF r.business_rule IS NOT NULL THEN
            v_pred := coalesce(v_pred || ' OR ', '') || '(' || r.business_rule || ')';
        END IF;
        v_pred := coalesce(v_pred, 'false');

        v_start := clock_timestamp();
        EXECUTE format('SELECT count(*) FROM public.%I t WHERE %s', r.tname, v_pred) INTO v_count;
        v_sample := NULL;
        IF v_count > 0 THEN
            EXECUTE format('SELECT string_agg(k, '', '' ORDER BY n) FROM ('
                           'SELECT t.%1$I::text AS k, row_number() OVER (ORDER BY t.%1$I) AS n '
                           'FROM public.%2$I t WHERE %3$s ORDER BY t.%1$I LIMIT 5) s',
                           r.key_column, r.tname, v_pred)
            INTO v_sample;
        END IF;
        elapsed_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
        EXECUTE format('SELECT count(*) FROM public.%I', r.tname) INTO v_rows;

        constraint_name     := r.cname;
        table_name          := r.tname;
        pg_constraint_name  := r.pgname;
        rollback_name       := r.rbname;
        constraint_state    := constraint_state(r.tname, r.pgname);
        violation_count     := v_count;
        rows_checked        := v_rows;
        sample_keys         := v_sample;
        description         := r.descr;
        threshold_critical  := r.t_crit;
        threshold_warning   := r.t_warn;
        threshold_attention := r.t_attn;
        violation_predicate := v_pred;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION evaluate_constraint_rules(text) IS
    'Counts, per monitored rule (optionally of one table), the rows that break it, from the live data.';

-- ---------------------------------------------------------------------------
-- Violations
-- ---------------------------------------------------------------------------

CREATE FUNCTION get_table_constraint_violations(p_table_name text)
RETURNS TABLE (
    table_name         text,
    constraint_name    text,
    violation_count    bigint,
    severity           constraint_severity,
    description        text,
    constraint_state   text,
    pg_constraint_name text,
    rollback_name      text,
    sample_keys        text,
    detected_at        timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF p_table_name IS NOT NULL AND to_regclass(format('public.%I', p_table_name)) IS NULL THEN
        RAISE EXCEPTION 'table "%" does not exist', p_table_name
              USING ERRCODE = 'undefined_table';
    END IF;
    RETURN QUERY
    SELECT e.table_name, e.constraint_name, e.violation_count,
           constraint_violation_severity(e.violation_count, e.threshold_critical,
                                         e.threshold_warning, e.threshold_attention),
           e.description, e.constraint_state, e.pg_constraint_name, e.rollback_name,
           e.sample_keys, clock_timestamp()
    FROM evaluate_constraint_rules(p_table_name) e
    WHERE e.violation_count > 0
    ORDER BY 4 DESC, 3 DESC, 1, 2;
END
$$;
COMMENT ON FUNCTION get_table_constraint_violations(text) IS
    'Live constraint/business-rule violations of one table (NULL = all tables); only rules with violations.';

CREATE FUNCTION get_constraint_violations()
RETURNS TABLE (
    table_name         text,
    constraint_name    text,
    violation_count    bigint,
    severity           constraint_severity,
    description        text,
    constraint_state   text,
    pg_constraint_name text,
    rollback_name      text,
    sample_keys        text,
    detected_at        timestamptz
)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM get_table_constraint_violations(NULL);
END
$$;
COMMENT ON FUNCTION get_constraint_violations() IS
    'Live violations of every monitored rule, worst first. severity: CRITICAL/HIGH/MEDIUM/LOW from the thresholds in constraint_monitoring_config.';

-- ---------------------------------------------------------------------------
-- Health check and status
-- ---------------------------------------------------------------------------

CREATE FUNCTION run_constraint_health_check()
RETURNS TABLE (
    check_timestamp    timestamptz,
    constraint_name    text,
    table_name         text,
    violation_count    integer,
    health_status      text,
    overall_status     text,
    constraint_state   text,
    performance_avg_ms numeric,
    alert_generated    boolean,
    notes              text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ts     timestamptz := clock_timestamp();
    e        record;
    v_status text;
    v_notes  text;
    v_alert  boolean;
BEGIN
    FOR e IN SELECT * FROM evaluate_constraint_rules(NULL) LOOP
        v_status := constraint_health_status(e.violation_count, e.threshold_critical,
                                             e.threshold_warning, e.threshold_attention);
        v_notes := CASE WHEN e.violation_count = 0 THEN 'No violations'
                        ELSE format('%s violating row(s), e.g. %s', e.violation_count, e.sample_keys) END;
        IF e.constraint_state = 'MISSING' THEN
            v_notes := v_notes || format('; constraint %s is not present (rolled back): rule not enforced',
                                         e.pg_constraint_name);
            IF v_status = 'HEALTHY' THEN
                v_status := 'ATTENTION';
            END IF;
        ELSIF e.constraint_state = 'NOT VALID' THEN
            v_notes := v_notes || format('; constraint %s is NOT VALID (existing rows not validated)',
                                         e.pg_constraint_name);
        END IF;
        v_alert := v_status IN ('WARNING', 'CRITICAL')
                   AND EXISTS (SELECT 1 FROM constraint_alert_config a
                               WHERE a.alert_level = v_status AND a.is_enabled);

        INSERT INTO constraint_monitoring_history
            (check_timestamp, constraint_name, table_name, violation_count, health_status,
             performance_avg_ms, performance_max_ms, rows_checked, constraint_state,
             alert_generated, check_source, notes)
        VALUES (v_ts, e.constraint_name, e.table_name, e.violation_count::integer, v_status,
                e.elapsed_ms, e.elapsed_ms, e.rows_checked, e.constraint_state,
                v_alert, 'run_constraint_health_check', v_notes);

        check_timestamp    := v_ts;
        constraint_name    := e.constraint_name;
        table_name         := e.table_name;
        violation_count    := e.violation_count::integer;
        health_status      := v_status;
        overall_status     := constraint_health_label(v_status);
        constraint_state   := e.constraint_state;
        performance_avg_ms := e.elapsed_ms;
        alert_generated    := v_alert;
        notes              := v_notes;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION run_constraint_health_check() IS
    'Checks every monitored constraint against the live data, appends one row per constraint to constraint_monitoring_history and returns them. A function: use SELECT * FROM run_constraint_health_check() (CALL does not work).';

CREATE FUNCTION get_system_health_status()
RETURNS TABLE (
    overall_status           text,
    status_label             text,
    health_score             numeric,
    constraints_monitored    integer,
    healthy_count            integer,
    attention_count          integer,
    warning_count            integer,
    critical_count           integer,
    total_violations         bigint,
    constraints_rolled_back  integer,
    constraints_not_valid    integer,
    avg_performance_ms_24h   numeric,
    max_performance_ms_24h   numeric,
    slowest_constraint       text,
    last_check_at            timestamptz,
    minutes_since_last_check numeric,
    checked_at               timestamptz,
    summary                  text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e        record;
    v_status text;
    n_total  integer := 0;
    n_ok     integer := 0;
    n_attn   integer := 0;
    n_warn   integer := 0;
    n_crit   integer := 0;
    n_viol   bigint := 0;
    n_rolled integer;
    n_nv     integer;
BEGIN
    FOR e IN SELECT * FROM evaluate_constraint_rules(NULL) LOOP
        v_status := constraint_health_status(e.violation_count, e.threshold_critical,
                                             e.threshold_warning, e.threshold_attention);
        IF e.constraint_state = 'MISSING' AND v_status = 'HEALTHY' THEN
            v_status := 'ATTENTION';
        END IF;
        n_total := n_total + 1;
        n_viol := n_viol + e.violation_count;
        CASE v_status
            WHEN 'CRITICAL' THEN n_crit := n_crit + 1;
            WHEN 'WARNING' THEN n_warn := n_warn + 1;
            WHEN 'ATTENTION' THEN n_attn := n_attn + 1;
            ELSE n_ok := n_ok + 1;
        END CASE;
    END LOOP;

    SELECT count(*) FILTER (WHERE constraint_state(r.table_name, r.pg_constraint_name) = 'MISSING'),
           count(*) FILTER (WHERE constraint_state(r.table_name, r.pg_constraint_name) = 'NOT VALID')
      INTO n_rolled, n_nv
      FROM rollback_config r;

    overall_status := CASE WHEN n_crit > 0 THEN 'CRITICAL'
                           WHEN n_warn > 0 THEN 'WARNING'
                           WHEN n_attn > 0 OR n_rolled > 0 THEN 'ATTENTION'
                           ELSE 'HEALTHY' END;
    status_label := constraint_health_label(overall_status);
    health_score := CASE WHEN n_total > 0 THEN round(100.0 * n_ok / n_total, 1) END;
    constraints_monitored := n_total;
    healthy_count := n_ok;
    attention_count := n_attn;
    warning_count := n_warn;
    critical_count := n_crit;
    total_violations := n_viol;
    constraints_rolled_back := n_rolled;
    constraints_not_valid := n_nv;

    SELECT round(avg(h.performance_avg_ms), 2), max(h.performance_avg_ms)
      INTO avg_performance_ms_24h, max_performance_ms_24h
      FROM constraint_monitoring_history h
     WHERE h.check_timestamp >= now() - interval '24 hours';
    SELECT h.constraint_name INTO slowest_constraint
      FROM constraint_monitoring_history h
     WHERE h.check_timestamp >= now() - interval '24 hours'
     GROUP BY h.constraint_name
     ORDER BY avg(h.performance_avg_ms) DESC NULLS LAST
     LIMIT 1;
    SELECT max(h.check_timestamp) INTO last_check_at FROM constraint_monitoring_history h;
    minutes_since_last_check := round(extract(epoch FROM clock_timestamp() - last_check_at)::numeric / 60, 1);
    checked_at := clock_timestamp();
    summary := format('%s: %s critical, %s warning, %s attention, %s healthy of %s monitored constraints; '
                      '%s violating rows; %s constraint(s) rolled back, %s NOT VALID',
                      overall_status, n_crit, n_warn, n_attn, n_ok, n_total, n_viol, n_rolled, n_nv);
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION get_system_health_status() IS
    'One row: overall constraint health computed from the live data (CRITICAL if any monitored rule is critical), plus 24h performance and rollback state.';

CREATE FUNCTION analyze_constraint_performance(p_hours integer DEFAULT 24)
RETURNS TABLE (
    constraint_name    text,
    table_name         text,
    check_count        bigint,
    avg_performance_ms numeric,
    max_performance_ms numeric,
    p95_performance_ms numeric,
    baseline_avg_ms    numeric,
    change_percent     numeric,
    trend              text,
    performance_impact text,
    recommendation     text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF p_hours IS NULL OR p_hours < 1 THEN
        RAISE EXCEPTION 'p_hours must be >= 1 (got %)', p_hours USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH cur AS (
        SELECT h.constraint_name AS cname, h.table_name AS tname, count(*) AS n,
               avg(h.performance_avg_ms) AS avg_ms,
               max(coalesce(h.performance_max_ms, h.performance_avg_ms)) AS max_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY h.performance_avg_ms) AS p95
        FROM constraint_monitoring_history h
        WHERE h.check_timestamp >= now() - make_interval(hours => p_hours)
        GROUP BY 1, 2
    ), base AS (
        SELECT h.constraint_name AS cname, h.table_name AS tname, avg(h.performance_avg_ms) AS avg_ms
        FROM constraint_monitoring_history h
        WHERE h.check_timestamp >= now() - make_interval(hours => 2 * p_hours)
          AND h.check_timestamp < now() - make_interval(hours => p_hours)
        GROUP BY 1, 2
    )
    SELECT c.cname, c.tname, c.n,
           round(c.avg_ms, 2), round(c.max_ms, 2), round(c.p95::numeric, 2),
           round(b.avg_ms, 2),
           CASE WHEN b.avg_ms > 0 THEN round(100 * (c.avg_ms - b.avg_ms) / b.avg_ms, 1) END,
           CASE WHEN b.avg_ms IS NULL OR b.avg_ms = 0 THEN 'NO BASELINE'
                WHEN c.avg_ms > b.avg_ms * 1.25 THEN 'DEGRADING'
                WHEN c.avg_ms < b.avg_ms * 0.75 THEN 'IMPROVING'
                ELSE 'STABLE' END,
           constraint_performance_impact(c.avg_ms),
           CASE WHEN c.avg_ms > 1000 THEN 'Investigate now: consider rolling back the constraint (see rollback_config) or simplifying it'
                WHEN c.avg_ms >= 500 THEN 'Investigate within 4 hours: check indexes and constraint expression cost'
                WHEN c.avg_ms >= 100 THEN 'Monitor: review at the weekly maintenance'
                ELSE 'No action' END
    FROM cur c
    LEFT JOIN base b ON b.cname = c.cname AND b.tname = c.tname
    ORDER BY c.avg_ms DESC NULLS LAST;
END
$$;
COMMENT ON FUNCTION analyze_constraint_performance(integer) IS
    'Per constraint: check time over the last p_hours vs the p_hours before, with impact label and a recommendation.';

-- ---------------------------------------------------------------------------
-- Emergency rollback and recovery
-- ---------------------------------------------------------------------------

-- Accepts the short name (rollback_config.constraint_name, e.g.
-- 'workflow_progression') or the real name ('panels_workflow_progression_check').
CREATE FUNCTION resolve_rollback_constraint(p_constraint_name text, p_table_name text)
RETURNS rollback_config
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rc rollback_config;
BEGIN
    SELECT * INTO rc
    FROM rollback_config r
    WHERE r.table_name = lower(p_table_name)
      AND (r.constraint_name = lower(p_constraint_name) OR r.pg_constraint_name = lower(p_constraint_name));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no rollback configuration for constraint "%" on table "%"', p_constraint_name, p_table_name
              USING ERRCODE = 'undefined_object',
                    HINT = 'known: ' || (SELECT string_agg(format('%s on %s', r.constraint_name, r.table_name), ', '
                                                           ORDER BY r.rollback_priority, r.id)
                                         FROM rollback_config r);
    END IF;
    RETURN rc;
END
$$;

CREATE FUNCTION apply_constraint_rollback(p_constraint_name text, p_table_name text,
                                          p_mode text, p_test_type text)
RETURNS TABLE (
    constraint_name       text,
    table_name            text,
    pg_constraint_name    text,
    rollback_mode         text,
    rollback_status       text,
    action                text,
    duration_ms           numeric,
    constraint_definition text,
    message               text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rc       rollback_config;
    v_mode   text := upper(coalesce(p_mode, 'DROP_CONSTRAINT'));
    v_start  timestamptz := clock_timestamp();
    v_rel    regclass;
    v_oid    oid;
    v_def    text;
    v_valid  boolean;
    v_status text;
    v_action text;
    v_msg    text;
    v_ms     numeric;
BEGIN
    IF v_mode NOT IN ('DROP_CONSTRAINT', 'DRY_RUN') THEN
        RAISE EXCEPTION 'unknown rollback mode "%"', p_mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'DROP_CONSTRAINT (drop it now) or DRY_RUN (report only)';
    END IF;
    rc := resolve_rollback_constraint(p_constraint_name, p_table_name);
    v_rel := to_regclass(format('public.%I', rc.table_name));
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'table "%" does not exist', rc.table_name USING ERRCODE = 'undefined_table';
    END IF;

    SELECT c.oid, pg_get_constraintdef(c.oid), c.convalidated
      INTO v_oid, v_def, v_valid
      FROM pg_constraint c
     WHERE c.conrelid = v_rel AND c.conname = rc.pg_constraint_name;
    v_def := regexp_replace(v_def, '\s+NOT VALID$', '');

    IF v_oid IS NULL THEN
        v_status := 'PASS';
        v_action := 'ALREADY_ABSENT';
        v_def := rc.constraint_definition;
        v_msg := format('%s is not present on %s: already rolled back, nothing to do',
                        rc.pg_constraint_name, rc.table_name);
    ELSIF v_mode = 'DRY_RUN' THEN
        v_status := 'PASS';
        v_action := 'WOULD_DROP';
        v_msg := format('would run: ALTER TABLE public.%I DROP CONSTRAINT %I', rc.table_name, rc.pg_constraint_name);
    ELSE
        BEGIN
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', rc.table_name, rc.pg_constraint_name);
            v_status := 'PASS';
            v_action := 'DROPPED';
            v_msg := format('dropped %s from %s (was %s); recover with recover_constraint(%L, %L)',
                            rc.pg_constraint_name, rc.table_name,
                            CASE WHEN v_valid THEN 'VALID' ELSE 'NOT VALID' END,
                            rc.constraint_name, rc.table_name);
        EXCEPTION WHEN OTHERS THEN
            v_status := 'FAIL';
            v_action := 'FAILED';
            v_msg := format('could not drop %s: %s (SQLSTATE %s)', rc.pg_constraint_name, SQLERRM, SQLSTATE);
        END;
    END IF;
    v_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);

    IF v_mode <> 'DRY_RUN' THEN
        INSERT INTO constraint_rollback_log
            (operation, constraint_name, table_name, pg_constraint_name, mode, status, action,
             constraint_definition, was_validated, duration_ms, message)
        VALUES ('ROLLBACK', rc.constraint_name, rc.table_name, rc.pg_constraint_name, v_mode, v_status,
                v_action, v_def, v_valid, v_ms, v_msg);
        INSERT INTO rollback_test_results
            (test_name, test_type, constraint_name, table_name, test_result, duration_ms, notes, tested_at)
        VALUES (CASE WHEN p_test_type = 'EMERGENCY' THEN 'Emergency rollback - critical constraints'
                     ELSE format('rollback_constraint(%s)', rc.constraint_name) END,
                p_test_type, rc.constraint_name, rc.table_name, v_status, v_ms, v_msg, clock_timestamp());
    END IF;

    RETURN QUERY SELECT rc.constraint_name, rc.table_name, rc.pg_constraint_name, v_mode, v_status,
                        v_action, v_ms, v_def, v_msg;
END
$$;
COMMENT ON FUNCTION apply_constraint_rollback(text, text, text, text) IS
    'Implementation of rollback_constraint(); p_test_type is what rollback_test_results records (ROLLBACK or EMERGENCY).';

CREATE FUNCTION rollback_constraint(p_constraint_name text, p_table_name text,
                                    p_mode text DEFAULT 'DROP_CONSTRAINT')
RETURNS TABLE (
    constraint_name       text,
    table_name            text,
    pg_constraint_name    text,
    rollback_mode         text,
    rollback_status       text,
    action                text,
    duration_ms           numeric,
    constraint_definition text,
    message               text
)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM apply_constraint_rollback(p_constraint_name, p_table_name, p_mode, 'ROLLBACK');
END
$$;
COMMENT ON FUNCTION rollback_constraint(text, text, text) IS
    'Drops one constraint named by its short name (see rollback_config) and records it in constraint_rollback_log and rollback_test_results. Modes: DROP_CONSTRAINT, DRY_RUN. rollback_status PASS means "not enforced any more" (action DROPPED, or ALREADY_ABSENT); FAIL carries the error in message.';

CREATE FUNCTION emergency_rollback_critical_constraints()
RETURNS TABLE (
    constraint_name text,
    table_name      text,
    rollback_status text,
    duration_ms     numeric,
    action          text,
    message         text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rc rollback_config;
    r  record;
BEGIN
    FOR rc IN SELECT * FROM rollback_config c WHERE c.rollback_priority = 1
              ORDER BY c.risk_level DESC, c.id
    LOOP
        SELECT * INTO r FROM apply_constraint_rollback(rc.constraint_name, rc.table_name,
                                                      'DROP_CONSTRAINT', 'EMERGENCY');
        constraint_name := r.constraint_name;
        table_name      := r.table_name;
        rollback_status := r.rollback_status;
        duration_ms     := r.duration_ms;
        action          := r.action;
        message         := r.message;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION emergency_rollback_critical_constraints() IS
    'Drops every rollback_priority = 1 constraint (highest risk first), one row each. Idempotent: a second call reports PASS / ALREADY_ABSENT.';

CREATE FUNCTION recover_constraint(p_constraint_name text, p_table_name text)
RETURNS TABLE (
    constraint_name       text,
    table_name            text,
    pg_constraint_name    text,
    recovery_status       text,
    action                text,
    validated             boolean,
    violating_rows        bigint,
    duration_ms           numeric,
    constraint_definition text,
    message               text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rc       rollback_config;
    v_start  timestamptz := clock_timestamp();
    v_rel    regclass;
    v_valid  boolean;
    v_def    text;
    v_src    text;
    v_status text;
    v_action text;
    v_msg    text;
    v_viol   bigint;
    v_ms     numeric;
BEGIN
    rc := resolve_rollback_constraint(p_constraint_name, p_table_name);
    v_rel := to_regclass(format('public.%I', rc.table_name));
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'table "%" does not exist', rc.table_name USING ERRCODE = 'undefined_table';
    END IF;

    SELECT c.convalidated, regexp_replace(pg_get_constraintdef(c.oid), '\s+NOT VALID$', '')
      INTO v_valid, v_def
      FROM pg_constraint c
     WHERE c.conrelid = v_rel AND c.conname = rc.pg_constraint_name;

    IF FOUND THEN
        v_status := CASE WHEN v_valid THEN 'PASS' ELSE 'NOT_VALID' END;
        v_action := 'ALREADY_PRESENT';
        v_msg := format('%s is already present on %s (%s): nothing to do', rc.pg_constraint_name,
                        rc.table_name, CASE WHEN v_valid THEN 'VALID' ELSE 'NOT VALID' END);
    ELSE
        -- the definition dropped last (exact), else the one captured at install time
        SELECT l.constraint_definition INTO v_def
          FROM constraint_rollback_log l
         WHERE l.table_name = rc.table_name AND l.pg_constraint_name = rc.pg_constraint_name
           AND l.operation = 'ROLLBACK' AND l.action = 'DROPPED' AND l.constraint_definition IS NOT NULL
         ORDER BY l.performed_at DESC, l.id DESC
         LIMIT 1;
        v_src := 'constraint_rollback_log';
        IF v_def IS NULL THEN
            v_def := rc.constraint_definition;
            v_src := 'rollback_config';
        END IF;

        IF v_def IS NULL THEN
            v_status := 'FAIL';
            v_action := 'FAILED';
            v_msg := format('no recorded definition for %s', rc.pg_constraint_name);
        ELSE
            BEGIN
                EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s',
                               rc.table_name, rc.pg_constraint_name, v_def);
                v_status := 'PASS';
                v_action := 'RECREATED';
                v_valid := true;
                v_viol := 0;
                v_msg := format('re-created %s on %s from %s and validated all existing rows',
                                rc.pg_constraint_name, rc.table_name, v_src);
            EXCEPTION WHEN check_violation OR foreign_key_violation THEN
                -- existing rows break it: enforce it for new rows, leave old rows unvalidated
                BEGIN
                    EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s NOT VALID',
                                   rc.table_name, rc.pg_constraint_name, v_def);
                    v_status := 'NOT_VALID';
                    v_action := 'RECREATED_NOT_VALID';
                    v_valid := false;
                    IF v_def LIKE 'CHECK %' THEN
                        EXECUTE format('SELECT count(*) FROM public.%I t WHERE NOT COALESCE(%s, true)',
                                       rc.table_name, substr(v_def, 7))
                        INTO v_viol;
                    END IF;
                    v_msg := format('re-created %s on %s from %s as NOT VALID: %s existing row(s) violate it; '
                                    'new and updated rows are checked. Fix the data, then '
                                    'ALTER TABLE %I VALIDATE CONSTRAINT %I',
                                    rc.pg_constraint_name, rc.table_name, v_src,
                                    coalesce(v_viol::text, 'some'), rc.table_name, rc.pg_constraint_name);
                EXCEPTION WHEN OTHERS THEN
                    v_status := 'FAIL';
                    v_action := 'FAILED';
                    v_msg := format('could not re-create %s: %s (SQLSTATE %s)', rc.pg_constraint_name, SQLERRM, SQLSTATE);
                END;
            WHEN OTHERS THEN
                v_status := 'FAIL';
                v_action := 'FAILED';
                v_msg := format('could not re-create %s: %s (SQLSTATE %s)', rc.pg_constraint_name, SQLERRM, SQLSTATE);
            END;
        END IF;
    END IF;
    v_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);

    INSERT INTO constraint_rollback_log
        (operation, constraint_name, table_name, pg_constraint_name, mode, status, action,
         constraint_definition, was_validated, violating_rows, duration_ms, message)
    VALUES ('RECOVER', rc.constraint_name, rc.table_name, rc.pg_constraint_name, 'ADD_CONSTRAINT', v_status,
            v_action, v_def, v_valid, v_viol, v_ms, v_msg);
    INSERT INTO rollback_test_results
        (test_name, test_type, constraint_name, table_name, test_result, duration_ms, notes, tested_at)
    VALUES (format('recover_constraint(%s)', rc.constraint_name), 'RECOVERY', rc.constraint_name,
            rc.table_name, CASE v_status WHEN 'PASS' THEN 'PASS' WHEN 'NOT_VALID' THEN 'WARN' ELSE 'FAIL' END,
            v_ms, v_msg, clock_timestamp());

    RETURN QUERY SELECT rc.constraint_name, rc.table_name, rc.pg_constraint_name, v_status, v_action,
                        v_valid, v_viol, v_ms, v_def, v_msg;
END
$$;
COMMENT ON FUNCTION recover_constraint(text, text) IS
    'Re-creates a rolled-back constraint from the definition recorded when it was dropped. recovery_status: PASS (validated), NOT_VALID (existing rows violate it: added NOT VALID, new rows are checked), FAIL.';

-- ---------------------------------------------------------------------------
-- Post-rollback validation
-- ---------------------------------------------------------------------------

CREATE FUNCTION test_system_functionality(p_table_name text)
RETURNS TABLE (
    test_name   text,
    test_result text,
    details     text,
    duration_ms numeric
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_rel     regclass := to_regclass(format('public.%I', p_table_name));
    v_start   timestamptz;
    v_count   bigint;
    v_pk      text;
    v_probe   text;
    v_order   text;
    v_missing text;
    v_present integer;
    v_total   integer;
    v_blocked integer;
BEGIN
    -- 1. the table exists
    IF v_rel IS NULL THEN
        test_name := 'table_exists'; test_result := 'FAIL';
        details := format('table public.%s does not exist', p_table_name); duration_ms := 0;
        RETURN NEXT;
        RETURN;
    END IF;
    test_name := 'table_exists'; test_result := 'PASS';
    details := format('public.%I', p_table_name); duration_ms := 0;
    RETURN NEXT;

    -- 2. it can be read
    v_start := clock_timestamp();
    BEGIN
        EXECUTE format('SELECT count(*) FROM public.%I', p_table_name) INTO v_count;
        test_result := 'PASS'; details := format('%s rows readable', v_count);
    EXCEPTION WHEN OTHERS THEN
        test_result := 'FAIL'; details := SQLERRM;
    END;
    test_name := 'read_access';
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    RETURN NEXT;

    -- 3. primary key present and a key lookup is fast
    SELECT a.attname INTO v_pk
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = v_rel AND i.indisprimary;
    test_name := 'primary_key';
    test_result := CASE WHEN v_pk IS NULL THEN 'FAIL' ELSE 'PASS' END;
    details := coalesce('primary key on ' || v_pk, 'no primary key');
    duration_ms := 0;
    RETURN NEXT;

    IF v_pk IS NOT NULL THEN
        v_start := clock_timestamp();
        EXECUTE format('SELECT count(*) FROM public.%1$I WHERE %2$I = (SELECT max(%2$I) FROM public.%1$I)',
                       p_table_name, v_pk) INTO v_count;
        duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
        test_name := 'key_lookup_latency';
        test_result := CASE WHEN duration_ms < 100 THEN 'PASS' WHEN duration_ms < 1000 THEN 'WARN' ELSE 'FAIL' END;
        details := format('lookup by %s took %s ms', v_pk, duration_ms);
        RETURN NEXT;
    END IF;

    -- 4. a representative insert succeeds (rolled back: nothing is kept)
    v_probe := CASE p_table_name
        WHEN 'panels' THEN
            $q$INSERT INTO public.panels (barcode, panel_type, line_assignment, manufacturing_order_id, status)
               SELECT 'CRS' || to_char(now(), 'YY') || 'FT36' || '99999', '36', 'LINE_1', mo.id, 'PENDING'
               FROM public.manufacturing_orders mo ORDER BY (mo.status = 'ACTIVE') DESC, mo.id DESC LIMIT 1$q$
        WHEN 'manufacturing_orders' THEN
            $q$INSERT INTO public.manufacturing_orders (order_number, panel_type, target_quantity, status)
               VALUES ('MO-PROBE-' || pg_backend_pid(), '60', 10, 'PLANNED')$q$
        WHEN 'pallets' THEN
            $q$INSERT INTO public.pallets (pallet_number, manufacturing_order_id, capacity, panel_count, status)
               SELECT 'PAL-PROBE-' || pg_backend_pid(), max(mo.id), 25, 0, 'OPEN' FROM public.manufacturing_orders mo$q$
        WHEN 'users' THEN
            $q$INSERT INTO public.users (username, email, full_name, role)
               VALUES ('probe_' || pg_backend_pid(), 'probe.' || pg_backend_pid() || '@solarworks.example',
                       'Functionality Probe', 'OPERATOR')$q$
        WHEN 'inspections' THEN
            $q$INSERT INTO public.inspections (panel_id, station_id, inspector_id, result, notes)
               SELECT (SELECT max(id) FROM public.panels), (SELECT min(id) FROM public.stations),
                      (SELECT min(id) FROM public.users WHERE role = 'STATION_INSPECTOR'), 'PASS', 'probe'$q$
        ELSE NULL
    END;
    test_name := 'insert_probe';
    IF current_setting('transaction_read_only') = 'on' THEN
        test_result := 'SKIPPED';
        details := 'read-only transaction: write probes not run';
        duration_ms := 0;
    ELSIF v_probe IS NULL THEN
        test_result := 'SKIPPED';
        details := format('no insert probe for %s (reference table)', p_table_name);
        duration_ms := 0;
    ELSE
        v_start := clock_timestamp();
        BEGIN
            EXECUTE v_probe;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            RAISE EXCEPTION USING ERRCODE = 'RBPRB', MESSAGE = v_count::text;
        EXCEPTION
            WHEN SQLSTATE 'RBPRB' THEN
                test_result := CASE WHEN SQLERRM = '1' THEN 'PASS' ELSE 'FAIL' END;
                details := CASE WHEN SQLERRM = '1' THEN 'a new row can be inserted (probe rolled back)'
                                ELSE 'probe inserted no row (missing reference data?)' END;
            WHEN OTHERS THEN
                test_result := 'FAIL';
                details := format('insert failed: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
        END;
        duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    END IF;
    RETURN NEXT;

    -- 5. the most recent row can be updated (all constraints re-checked; rolled back)
    v_order := CASE p_table_name WHEN 'inspections' THEN 'inspected_at' ELSE 'created_at' END;
    test_name := 'update_probe';
    IF current_setting('transaction_read_only') = 'on' THEN
        test_result := 'SKIPPED'; details := 'read-only transaction: write probes not run'; duration_ms := 0;
    ELSIF v_pk IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a
                                   WHERE a.attrelid = v_rel AND a.attname = v_order AND NOT a.attisdropped) THEN
        test_result := 'SKIPPED'; details := 'no primary key or timestamp column'; duration_ms := 0;
    ELSE
        v_start := clock_timestamp();
        BEGIN
            EXECUTE format('UPDATE public.%1$I SET %2$I = %2$I WHERE %2$I = '
                           '(SELECT %2$I FROM public.%1$I ORDER BY %3$I DESC, %2$I DESC LIMIT 1)',
                           p_table_name, v_pk, v_order);
            GET DIAGNOSTICS v_count = ROW_COUNT;
            RAISE EXCEPTION USING ERRCODE = 'RBPRB', MESSAGE = v_count::text;
        EXCEPTION
            WHEN SQLSTATE 'RBPRB' THEN
                test_result := CASE WHEN SQLERRM = '0' THEN 'SKIPPED' ELSE 'PASS' END;
                details := CASE WHEN SQLERRM = '0' THEN 'table is empty'
                                ELSE 'the most recent row can be updated (probe rolled back)' END;
            WHEN OTHERS THEN
                test_result := 'FAIL';
                details := format('update failed: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
        END;
        duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    END IF;
    RETURN NEXT;

    -- 6. no session is waiting for a lock on the table
    SELECT count(*) INTO v_blocked FROM pg_locks l WHERE l.relation = v_rel AND NOT l.granted;
    test_name := 'lock_waits';
    test_result := CASE WHEN v_blocked = 0 THEN 'PASS' ELSE 'WARN' END;
    details := format('%s session(s) waiting for a lock on %s', v_blocked, p_table_name);
    duration_ms := 0;
    RETURN NEXT;

    -- 7. which configured constraints are in place
    SELECT count(*), count(*) FILTER (WHERE constraint_state(r.table_name, r.pg_constraint_name) <> 'MISSING'),
           string_agg(r.constraint_name, ', ' ORDER BY r.rollback_priority, r.id)
               FILTER (WHERE constraint_state(r.table_name, r.pg_constraint_name) = 'MISSING')
      INTO v_total, v_present, v_missing
      FROM rollback_config r WHERE r.table_name = p_table_name;
    test_name := 'constraint_inventory';
    test_result := CASE WHEN v_present = v_total THEN 'PASS' ELSE 'WARN' END;
    details := format('%s of %s rollback-managed constraint(s) present', v_present, v_total)
               || coalesce('; rolled back: ' || v_missing, '');
    duration_ms := 0;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION test_system_functionality(text) IS
    'Can the application still work with this table? Read, key lookup, insert and update probes (rolled back; SKIPPED in a read-only transaction), lock waits, constraint inventory. test_result: PASS/WARN/FAIL/SKIPPED.';

CREATE FUNCTION test_data_integrity(p_table_name text)
RETURNS TABLE (
    check_name      text,
    test_result     text,
    violation_count bigint,
    details         text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_rel   regclass := to_regclass(format('public.%I', p_table_name));
    e       record;
    fk      record;
    v_count bigint;
    v_list  text;
BEGIN
    IF v_rel IS NULL THEN
        check_name := 'table_exists'; test_result := 'FAIL'; violation_count := NULL;
        details := format('table public.%s does not exist', p_table_name);
        RETURN NEXT;
        RETURN;
    END IF;

    -- every monitored business rule of the table, against the live rows
    FOR e IN SELECT * FROM evaluate_constraint_rules(p_table_name) LOOP
        check_name := e.constraint_name;
        violation_count := e.violation_count;
        test_result := CASE WHEN e.violation_count = 0 THEN 'PASS' ELSE 'FAIL' END;
        details := e.description || format(' [constraint %s: %s]', coalesce(e.pg_constraint_name, '-'),
                                           e.constraint_state)
                   || coalesce('; e.g. ' || e.sample_keys, '');
        RETURN NEXT;
    END LOOP;

    -- orphaned references (single-column foreign keys)
    FOR fk IN
        SELECT c.conname, a.attname AS col, c.confrelid::regclass AS parent, af.attname AS parent_col
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
        WHERE c.conrelid = v_rel AND c.contype = 'f' AND array_length(c.conkey, 1) = 1
        ORDER BY c.conname
    LOOP
        EXECUTE format('SELECT count(*) FROM public.%I t WHERE t.%I IS NOT NULL AND NOT EXISTS '
                       '(SELECT 1 FROM %s p WHERE p.%I = t.%I)',
                       p_table_name, fk.col, fk.parent, fk.parent_col, fk.col)
        INTO v_count;
        check_name := 'fk:' || fk.conname;
        violation_count := v_count;
        test_result := CASE WHEN v_count = 0 THEN 'PASS' ELSE 'FAIL' END;
        details := format('%s.%s -> %s.%s: %s orphaned row(s)', p_table_name, fk.col, fk.parent, fk.parent_col, v_count);
        RETURN NEXT;
    END LOOP;

    -- constraints whose existing rows were never validated
    SELECT count(*), string_agg(c.conname, ', ' ORDER BY c.conname) INTO v_count, v_list
      FROM pg_constraint c WHERE c.conrelid = v_rel AND NOT c.convalidated;
    check_name := 'not_valid_constraints';
    violation_count := v_count;
    test_result := CASE WHEN v_count = 0 THEN 'PASS' ELSE 'WARN' END;
    details := CASE WHEN v_count = 0 THEN 'all constraints validated'
                    ELSE 'NOT VALID (existing rows unchecked): ' || v_list END;
    RETURN NEXT;

    -- rollback-managed constraints currently dropped
    SELECT count(*), string_agg(r.constraint_name || ' (' || r.pg_constraint_name || ')', ', ' ORDER BY r.id)
      INTO v_count, v_list
      FROM rollback_config r
     WHERE r.table_name = p_table_name AND constraint_state(r.table_name, r.pg_constraint_name) = 'MISSING';
    check_name := 'rolled_back_constraints';
    violation_count := v_count;
    test_result := CASE WHEN v_count = 0 THEN 'PASS' ELSE 'WARN' END;
    details := CASE WHEN v_count = 0 THEN 'no constraint of this table is rolled back'
                    ELSE 'not enforced: ' || v_list END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION test_data_integrity(text) IS
    'Data integrity of one table from the live rows: every monitored rule (FAIL with the count), orphaned foreign keys, NOT VALID and rolled-back constraints (WARN).';
