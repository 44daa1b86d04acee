-- 21_festival_functions.sql - detection algorithms, health snapshots and
-- maintenance functions of the festival monitoring system.
--
-- In production the detection cycle runs from an edge function every 30 s to
-- 5 min; here SELECT * FROM run_monitoring_cycle() does one cycle in SQL:
-- it inserts monitoring events for what it finds (never twice for the same
-- open problem), records a system_health snapshot plus its heartbeat event,
-- and sends alerts for new HIGH/CRITICAL events.

CREATE FUNCTION classify_festival_health(p_success_rate numeric, p_avg_processing_ms numeric,
                                         p_open_critical integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    -- guide thresholds: success rate < 98 % WARNING, < 95 % CRITICAL;
    -- response time > 500 ms WARNING, > 1000 ms CRITICAL;
    -- open critical events 1-2 WARNING, > 3 CRITICAL (3 is treated as WARNING)
    SELECT CASE
        WHEN coalesce(p_success_rate, 100) < 95
          OR coalesce(p_avg_processing_ms, 0) > 1000
          OR coalesce(p_open_critical, 0) > 3 THEN 'CRITICAL'
        WHEN coalesce(p_success_rate, 100) < 98
          OR coalesce(p_avg_processing_ms, 0) > 500
          OR coalesce(p_open_critical, 0) >= 1 THEN 'WARNING'
        ELSE 'HEALTHY'
    END
$$;

-- The metrics of the hour ending at p_at, from the raw tables.
CREATE FUNCTION festival_health_metrics(p_at timestamptz DEFAULT now())
RETURNS TABLE (
    snapshot_timestamp                timestamptz,
    total_transactions_last_hour      integer,
    successful_transactions_last_hour integer,
    failed_transactions_last_hour     integer,
    success_rate_percent              numeric,
    avg_processing_time_ms            numeric,
    p95_processing_time_ms            numeric,
    total_volume_last_hour            numeric,
    active_cards_last_hour            integer,
    nfc_scans_last_hour               integer,
    duplicate_nfc_scans_last_hour     integer,
    monitoring_events_last_hour       integer,
    critical_events_last_hour         integer,
    open_critical_events              integer,
    overall_health_status             text
)
LANGUAGE sql STABLE AS $$
    WITH tx AS (
        SELECT count(*)::integer AS total,
               count(*) FILTER (WHERE l.status = 'completed')::integer AS ok,
               count(*) FILTER (WHERE l.status = 'failed')::integer AS failed,
               avg(l.processing_time_ms) AS avg_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY l.processing_time_ms) AS p95_ms,
               coalesce(sum(l.amount_involved) FILTER (WHERE l.status = 'completed'), 0) AS volume,
               count(DISTINCT l.card_id)::integer AS cards
        FROM app_transaction_log l
        WHERE l."timestamp" > p_at - interval '1 hour' AND l."timestamp" <= p_at
    ), scans AS (
        SELECT count(*)::integer AS total,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM nfc_scan_log s2
                   WHERE s2.card_id_scanned = s.card_id_scanned
                     AND s2.scan_timestamp < s.scan_timestamp
                     AND s2.scan_timestamp >= s.scan_timestamp - interval '2 seconds'))::integer AS dups
        FROM nfc_scan_log s
        WHERE s.scan_timestamp > p_at - interval '1 hour' AND s.scan_timestamp <= p_at
    ), ev AS (
        SELECT count(*) FILTER (WHERE e.event_type <> 'system_health')::integer AS detections,
               count(*) FILTER (WHERE e.severity = 'CRITICAL')::integer AS critical
        FROM monitoring_events e
        WHERE e.detection_timestamp > p_at - interval '1 hour' AND e.detection_timestamp <= p_at
    ), oc AS (
        SELECT count(*)::integer AS open_critical
        FROM monitoring_events e
        WHERE e.severity = 'CRITICAL' AND e.detection_timestamp <= p_at
          AND (e.resolved_at IS NULL OR e.resolved_at > p_at)
    )
    SELECT p_at,
           tx.total, tx.ok, tx.failed,
           CASE WHEN tx.total > 0 THEN round(100.0 * tx.ok / tx.total, 2) END,
           round(tx.avg_ms, 2),
           round(tx.p95_ms::numeric, 2),
           tx.volume,
           tx.cards,
           scans.total, scans.dups,
           ev.detections, ev.critical,
           oc.open_critical,
           classify_festival_health(CASE WHEN tx.total > 0 THEN round(100.0 * tx.ok / tx.total, 2) END,
                                    round(tx.avg_ms, 2), oc.open_critical)
    FROM tx, scans, ev, oc
$$;
COMMENT ON FUNCTION festival_health_metrics(timestamptz) IS
    'Transactions, NFC scans and monitoring events of the hour ending at p_at, with the resulting health status.';

-- ---------------------------------------------------------------------------
-- Detection algorithms (each returns the number of events it created)
-- ---------------------------------------------------------------------------

-- CRITICAL: a failed transaction that still lowered the balance.
CREATE FUNCTION detect_balance_deduction_on_failure(p_lookback interval DEFAULT interval '24 hours')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    n integer;
BEGIN
    INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                                   card_id, transaction_id, affected_amount, confidence_score,
                                   detection_data, context, created_at, updated_at)
    SELECT 'transaction_failure', 'CRITICAL', 'OPEN', 'balance_deduction_on_failure', clock_timestamp(),
           l.card_id, l.transaction_id, l.previous_balance - l.new_balance, 0.95,
           jsonb_build_object('previous_balance', l.previous_balance, 'new_balance', l.new_balance,
                              'amount_involved', l.amount_involved, 'transaction_type', l.transaction_type,
                              'transaction_timestamp', l."timestamp", 'error', l.details ->> 'error'),
           jsonb_build_object('alert', 'Balance deducted on failed transaction',
                              'location', coalesce(l.details ->> 'bar_location', l.details ->> 'checkpoint_id'),
                              'edge_function', l.edge_function_name),
           v_started, clock_timestamp()
    FROM app_transaction_log l
    WHERE l.status = 'failed'
      AND l.new_balance < l.previous_balance
      AND l."timestamp" > now() - p_lookback
      AND NOT EXISTS (SELECT 1 FROM monitoring_events e
                      WHERE e.detection_algorithm = 'balance_deduction_on_failure'
                        AND e.transaction_id = l.transaction_id)
    ORDER BY l."timestamp";
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- CRITICAL: card balance differs from what its transactions imply.
CREATE FUNCTION detect_balance_mismatch()
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    n integer;
BEGIN
    INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                                   card_id, affected_amount, confidence_score, detection_data, context,
                                   created_at, updated_at)
    SELECT 'balance_discrepancy', 'CRITICAL', 'OPEN', 'balance_mismatch_detection', clock_timestamp(),
           b.card_id, abs(b.discrepancy), 1.00,
           jsonb_build_object('actual_balance', b.actual_balance, 'expected_balance', b.expected_balance,
                              'discrepancy', b.discrepancy, 'transaction_count', b.transaction_count,
                              'last_transaction_at', b.last_transaction_at),
           jsonb_build_object('alert', 'Card balance mismatch detected'),
           v_started, clock_timestamp()
    FROM card_balance_check b
    WHERE b.discrepancy <> 0
      AND NOT EXISTS (SELECT 1 FROM monitoring_events e
                      WHERE e.detection_algorithm = 'balance_mismatch_detection'
                        AND e.card_id = b.card_id AND e.status IN ('OPEN', 'INVESTIGATING'))
    ORDER BY b.card_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- HIGH: p_min_failures or more failed transactions of one card within p_window.
CREATE FUNCTION detect_consecutive_failures(p_window interval DEFAULT interval '15 minutes',
                                            p_min_failures integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    n integer;
BEGIN
    INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                                   card_id, transaction_id, affected_amount, confidence_score,
                                   detection_data, context, created_at, updated_at)
    SELECT 'transaction_failure', 'HIGH', 'OPEN', 'consecutive_failures', clock_timestamp(),
           f.card_id, f.last_transaction_id, f.amount, 0.90,
           jsonb_build_object('failure_count', f.failures, 'window', p_window::text,
                              'first_failure', f.first_at, 'last_failure', f.last_at, 'errors', f.errors),
           jsonb_build_object('alert', 'Multiple consecutive failures for same card', 'locations', f.locations),
           v_started, clock_timestamp()
    FROM (
        SELECT l.card_id,
               count(*) AS failures,
               min(l."timestamp") AS first_at,
               max(l."timestamp") AS last_at,
               sum(l.amount_involved) AS amount,
               (array_agg(l.transaction_id ORDER BY l."timestamp" DESC))[1] AS last_transaction_id,
               jsonb_agg(DISTINCT l.details ->> 'error') AS errors,
               jsonb_agg(DISTINCT coalesce(l.details ->> 'bar_location', l.details ->> 'checkpoint_id')) AS locations
        FROM app_transaction_log l
        WHERE l.status = 'failed' AND l."timestamp" > now() - p_window
        GROUP BY l.card_id
        HAVING count(*) >= p_min_failures
    ) AS f
    WHERE NOT EXISTS (SELECT 1 FROM monitoring_events e
                      WHERE e.detection_algorithm = 'consecutive_failures'
                        AND e.card_id = f.card_id AND e.status IN ('OPEN', 'INVESTIGATING'))
    ORDER BY f.card_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- MEDIUM: the same card read twice within p_threshold in the last p_window.
CREATE FUNCTION detect_duplicate_nfc_scans(p_window interval DEFAULT interval '5 minutes',
                                           p_threshold interval DEFAULT interval '2 seconds')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    n integer;
BEGIN
    INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                                   card_id, confidence_score, detection_data, context, created_at, updated_at)
    SELECT 'duplicate_nfc', 'MEDIUM', 'OPEN', 'duplicate_nfc_detection', clock_timestamp(),
           d.card_id, 0.80,
           jsonb_build_object('scan_count', d.scans, 'first_scan', d.first_at, 'last_scan', d.last_at,
                              'span_ms', round(extract(epoch FROM d.last_at - d.first_at)::numeric * 1000),
                              'locations', d.locations),
           jsonb_build_object('alert', 'Duplicate NFC scans detected', 'threshold', p_threshold::text),
           v_started, clock_timestamp()
    FROM (
        SELECT s.card_id_scanned AS card_id, count(*) AS scans,
               min(s.scan_timestamp) AS first_at, max(s.scan_timestamp) AS last_at,
               jsonb_agg(DISTINCT s.scan_location) AS locations
        FROM nfc_scan_log s
        WHERE s.scan_timestamp > now() - p_window
          AND EXISTS (SELECT 1 FROM nfc_scan_log s2
                      WHERE s2.card_id_scanned = s.card_id_scanned
                        AND s2.scan_id <> s.scan_id
                        AND s2.scan_timestamp BETWEEN s.scan_timestamp - p_threshold
                                                  AND s.scan_timestamp + p_threshold)
        GROUP BY s.card_id_scanned
    ) AS d
    WHERE NOT EXISTS (SELECT 1 FROM monitoring_events e
                      WHERE e.detection_algorithm = 'duplicate_nfc_detection'
                        AND e.card_id = d.card_id AND e.status IN ('OPEN', 'INVESTIGATING'))
    ORDER BY d.card_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Snapshot of the last hour plus its heartbeat event (event_type system_health):
-- HEALTHY -> LOW, auto-resolved; WARNING -> MEDIUM, OPEN; CRITICAL -> HIGH, OPEN.
-- An open heartbeat of an earlier snapshot is resolved as superseded.
CREATE FUNCTION record_system_health_snapshot()
RETURNS SETOF system_health_snapshots
LANGUAGE plpgsql AS $$
DECLARE
    v_at   timestamptz := clock_timestamp();
    v_snap system_health_snapshots;
BEGIN
    INSERT INTO system_health_snapshots
        (snapshot_timestamp, total_transactions_last_hour, successful_transactions_last_hour,
         failed_transactions_last_hour, success_rate_percent, avg_processing_time_ms, p95_processing_time_ms,
         total_volume_last_hour, active_cards_last_hour, nfc_scans_last_hour, duplicate_nfc_scans_last_hour,
         monitoring_events_last_hour, critical_events_last_hour, open_critical_events, overall_health_status,
         metrics, created_at)
    SELECT m.snapshot_timestamp, m.total_transactions_last_hour, m.successful_transactions_last_hour,
           m.failed_transactions_last_hour, m.success_rate_percent, m.avg_processing_time_ms,
           m.p95_processing_time_ms, m.total_volume_last_hour, m.active_cards_last_hour, m.nfc_scans_last_hour,
           m.duplicate_nfc_scans_last_hour, m.monitoring_events_last_hour, m.critical_events_last_hour,
           m.open_critical_events, m.overall_health_status,
           jsonb_build_object('source', 'record_system_health_snapshot'), v_at
    FROM festival_health_metrics(v_at) AS m
    RETURNING * INTO v_snap;

    -- the previous heartbeat is superseded by this one
    UPDATE monitoring_events e
    SET status = 'RESOLVED', resolved_at = clock_timestamp(), updated_at = clock_timestamp(),
        resolution_notes = 'superseded by the next snapshot'
    WHERE e.event_type = 'system_health' AND e.detection_algorithm = 'system_health_snapshot'
      AND e.status IN ('OPEN', 'INVESTIGATING');

    INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                                   confidence_score, detection_data, context, resolved_at, resolution_notes,
                                   created_at, updated_at)
    VALUES ('system_health',
            CASE v_snap.overall_health_status WHEN 'HEALTHY' THEN 'LOW' WHEN 'WARNING' THEN 'MEDIUM'
                                              ELSE 'HIGH' END::event_severity,
            CASE WHEN v_snap.overall_health_status = 'HEALTHY' THEN 'RESOLVED' ELSE 'OPEN' END,
            'system_health_snapshot', clock_timestamp(), 1.00,
            jsonb_build_object('snapshot_id', v_snap.snapshot_id,
                               'overall_health_status', v_snap.overall_health_status,
                               'success_rate_percent', v_snap.success_rate_percent,
                               'avg_processing_time_ms', v_snap.avg_processing_time_ms,
                               'total_transactions_last_hour', v_snap.total_transactions_last_hour,
                               'open_critical_events', v_snap.open_critical_events),
            jsonb_build_object('alert', 'System health ' || v_snap.overall_health_status),
            CASE WHEN v_snap.overall_health_status = 'HEALTHY' THEN clock_timestamp() END,
            CASE WHEN v_snap.overall_health_status = 'HEALTHY' THEN 'heartbeat: healthy' END,
            v_at, clock_timestamp());

    RETURN NEXT v_snap;
END
$$;

CREATE FUNCTION run_monitoring_cycle()
RETURNS TABLE (step text, events_created integer, duration_ms numeric, details text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_start timestamptz;
    v_snap  system_health_snapshots;
BEGIN
    step := 'balance_deduction_on_failure'; v_start := clock_timestamp();
    events_created := detect_balance_deduction_on_failure();
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := 'failed transactions that lowered the balance (24 h)';
    RETURN NEXT;

    step := 'balance_mismatch_detection'; v_start := clock_timestamp();
    events_created := detect_balance_mismatch();
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := 'card balance vs completed transactions';
    RETURN NEXT;

    step := 'consecutive_failures'; v_start := clock_timestamp();
    events_created := detect_consecutive_failures();
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := '>= 3 failed transactions of one card in 15 minutes';
    RETURN NEXT;

    step := 'duplicate_nfc_detection'; v_start := clock_timestamp();
    events_created := detect_duplicate_nfc_scans();
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := 'same card read twice within 2 seconds (last 5 minutes)';
    RETURN NEXT;

    step := 'system_health_snapshot'; v_start := clock_timestamp();
    SELECT * INTO v_snap FROM record_system_health_snapshot();
    events_created := 1;
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := format('%s: success rate %s %%, %s transactions last hour, %s open critical events',
                      v_snap.overall_health_status, coalesce(v_snap.success_rate_percent::text, 'n/a'),
                      v_snap.total_transactions_last_hour, v_snap.open_critical_events);
    RETURN NEXT;

    -- alerts for new HIGH/CRITICAL events
    step := 'alert_dispatch'; v_start := clock_timestamp();
    INSERT INTO alert_history (monitoring_event_id, alert_level, alert_channel, recipient, alert_message, sent_at)
    SELECT e.event_id, e.severity, ch.channel, ch.recipient,
           format('[%s] %s: %s (card %s)', e.severity, e.event_type,
                  coalesce(e.context ->> 'alert', e.detection_algorithm), coalesce(e.card_id, '-')),
           clock_timestamp()
    FROM monitoring_events e
    JOIN (VALUES ('CRITICAL'::event_severity, 'phone', 'Festival Operations Manager'),
                 ('CRITICAL'::event_severity, 'sms', 'Festival Operations Manager'),
                 ('HIGH'::event_severity, 'sms', 'Technical Team Lead'),
                 ('HIGH'::event_severity, 'slack', '#festival-tech')) AS ch(sev, channel, recipient)
      ON ch.sev = e.severity
    WHERE e.status = 'OPEN'
      AND NOT EXISTS (SELECT 1 FROM alert_history a WHERE a.monitoring_event_id = e.event_id)
    ORDER BY e.event_id, ch.channel;
    GET DIAGNOSTICS events_created = ROW_COUNT;
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    details := 'alerts sent for open HIGH/CRITICAL events without an alert';
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION run_monitoring_cycle() IS
    'One detection cycle: the four detection algorithms, a system health snapshot (+ system_health heartbeat event) and alert dispatch. One row per step.';

-- ---------------------------------------------------------------------------
-- Maintenance (guide: "Daily maintenance tasks")
-- ---------------------------------------------------------------------------

CREATE FUNCTION cleanup_monitoring_data(p_retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cutoff timestamptz;
    n bigint;
BEGIN
    IF p_retention_days IS NULL OR p_retention_days < 1 THEN
        RAISE EXCEPTION 'retention must be at least 1 day (got %)', p_retention_days
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cutoff := now() - make_interval(days => p_retention_days);

    DELETE FROM alert_history a WHERE a.sent_at < v_cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'alert_history'; rows_deleted := n; RETURN NEXT;

    -- open events are kept whatever their age
    DELETE FROM monitoring_events e
    WHERE e.detection_timestamp < v_cutoff AND e.status IN ('RESOLVED', 'FALSE_POSITIVE');
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'monitoring_events'; rows_deleted := n; RETURN NEXT;

    DELETE FROM system_health_snapshots s WHERE s.snapshot_timestamp < v_cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'system_health_snapshots'; rows_deleted := n; RETURN NEXT;

    DELETE FROM nfc_scan_log s WHERE s.scan_timestamp < v_cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'nfc_scan_log'; rows_deleted := n; RETURN NEXT;
END
$$;
COMMENT ON FUNCTION cleanup_monitoring_data(integer) IS
    'Deletes monitoring data older than p_retention_days (resolved/false-positive events only; open events are kept). One row per table.';

CREATE FUNCTION refresh_monitoring_views()
RETURNS TABLE (view_name text, row_count bigint, duration_ms numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_start timestamptz := clock_timestamp();
BEGIN
    REFRESH MATERIALIZED VIEW monitoring_hourly_summary;
    view_name := 'monitoring_hourly_summary';
    SELECT count(*) INTO row_count FROM monitoring_hourly_summary;
    duration_ms := round(extract(epoch FROM clock_timestamp() - v_start)::numeric * 1000, 2);
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION refresh_monitoring_views() IS 'Refreshes the monitoring materialized views (monitoring_hourly_summary).';
