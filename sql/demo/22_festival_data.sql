-- 22_festival_data.sql - 600 cards, 72 hours of festival traffic, 40 days
-- of health snapshots and monitoring events, and the planted faults.
--
-- Deterministic (arithmetic only, md5-derived UUIDs); times relative to now().
-- Planted (see README.md):
--   CARD-0101  balance 25.00 higher than its transactions imply (unlogged credit)
--   CARD-0202  failed bar order 20 min ago that still debited 12.00
--   CARD-0303  3 failed bar orders in the last 10 minutes (NFC reader BAR-07)
--   CARD-0404  read 3 times within 1.3 seconds 2 minutes ago
--   last hour: 5 of 154 transactions failed -> success rate 96.75 % (WARNING)
--   yesterday: 30-minute Stripe outage (CRITICAL snapshots, resolved)
-- The load ends with one run_monitoring_cycle(), which detects the planted
-- faults as OPEN events, takes the current snapshot and sends the alerts.

-- JIT compilation (on by default where LLVM is installed) would make this
-- bulk load several times slower; the setting ends with this file's transaction.
SET LOCAL jit = off;

INSERT INTO table_cards (id, amount, description, card_type, created_at, updated_at)
SELECT format('CARD-%s', lpad(n::text, 4, '0')),
       0,
       CASE WHEN n <= 540 THEN 'Festival wristband' WHEN n <= 580 THEN 'Staff card'
            WHEN n <= 592 THEN 'Artist card' ELSE 'VIP card' END,
       CASE WHEN n <= 540 THEN 'participant' WHEN n <= 580 THEN 'staff'
            WHEN n <= 592 THEN 'artist' ELSE 'vip' END,
       now() - interval '12 days' + n * interval '1 minute',
       now() - interval '12 days' + n * interval '1 minute'
FROM generate_series(1, 600) AS n;

-- ---------------------------------------------------------------------------
-- Transactions, with balances chained per card
-- ---------------------------------------------------------------------------

WITH base AS (
    -- 3,600 transactions over 71 hours; card c gets, in order: a recharge,
    -- 4 bar orders, a recharge (so balances never go negative)
    SELECT 'base'::text AS src, i AS seq, (i % 600) + 1 AS card_no,
           now() - interval '72 hours' + i * interval '71 seconds' AS ts,
           CASE WHEN i / 600 IN (0, 5)
                THEN CASE WHEN ((i % 600) + 1) % 3 = 0 THEN 'stripe_recharge' ELSE 'checkpoint_recharge' END
                ELSE 'bar_order' END AS ttype,
           CASE WHEN i / 600 IN (0, 5) THEN (ARRAY[50, 60, 80, 100])[(i * 7 % 4) + 1]::numeric
                ELSE 2.50 + 0.50 * ((i * 13) % 20) END AS amount,
           CASE WHEN i / 600 NOT IN (0, 5) AND i % 173 = 0 THEN 'failed' ELSE 'completed' END AS status,
           false AS deducts,
           CASE WHEN i / 600 NOT IN (0, 5) AND i % 173 = 0 THEN 'pos_timeout' END AS error,
           i AS variant
    FROM generate_series(0, 3599) AS i
), peak AS (
    -- the last hour is busier: 149 bar orders, one of them failed
    SELECT 'peak', j, ((j * 7) % 600) + 1,
           now() - interval '58 minutes' + j * interval '22 seconds',
           'bar_order', 2.50 + 0.50 * ((j * 11) % 20),
           CASE WHEN j = 77 THEN 'failed' ELSE 'completed' END, false,
           CASE WHEN j = 77 THEN 'pos_timeout' END, j + 5000
    FROM generate_series(0, 149) AS j
    WHERE ((j * 7) % 600) + 1 NOT IN (101, 202, 303, 404)
), outage AS (
    -- yesterday: Stripe API timeouts for 30 minutes
    SELECT 'outage', m, ((m * 13) % 600) + 1,
           now() - interval '25 hours' + m * interval '60 seconds',
           'stripe_recharge', 50.00, 'failed', false, 'stripe_api_timeout', m + 7000
    FROM generate_series(0, 29) AS m
), planted AS (
    SELECT 'planted', p.seq, p.card_no, now() - p.ago, p.ttype, p.amount, p.status, p.deducts, p.error, p.variant
    FROM (VALUES
        -- CARD-0042: resolved burst of reader errors 30 hours ago
        (1,  42, interval '30 hours',             'bar_order', 6.50, 'failed', false, 'card_read_error',   3),
        (2,  42, interval '29 hours 58 minutes',  'bar_order', 6.50, 'failed', false, 'card_read_error',   3),
        (3,  42, interval '29 hours 56 minutes',  'bar_order', 6.50, 'failed', false, 'card_read_error',   3),
        -- CARD-0202: failed, but the balance was debited anyway
        (4, 202, interval '20 minutes',           'bar_order', 12.00, 'failed', true, 'edge_function_timeout', 5),
        -- CARD-0303: three failures in a row at BAR-07
        (5, 303, interval '9 minutes',            'bar_order', 8.50, 'failed', false, 'nfc_reader_timeout', 7),
        (6, 303, interval '6 minutes 30 seconds', 'bar_order', 8.50, 'failed', false, 'nfc_reader_timeout', 7),
        (7, 303, interval '4 minutes',            'bar_order', 6.00, 'failed', false, 'nfc_reader_timeout', 7),
        -- CARD-0404: one order, but the card was read three times (see nfc_scan_log)
        (8, 404, interval '2 minutes',            'bar_order', 7.50, 'completed', false, NULL, 2)
    ) AS p(seq, card_no, ago, ttype, amount, status, deducts, error, variant)
), gen AS (
    SELECT * FROM base
    UNION ALL SELECT * FROM peak
    UNION ALL SELECT * FROM outage
    UNION ALL SELECT * FROM planted
), effects AS (
    SELECT g.*,
           CASE WHEN g.status = 'completed' AND g.ttype LIKE '%recharge' THEN g.amount
                WHEN g.status = 'completed' THEN -g.amount
                WHEN g.deducts THEN -g.amount
                ELSE 0 END AS effect,
           CASE g.ttype
               WHEN 'bar_order' THEN CASE WHEN g.src = 'planted' THEN 'BAR-0' || g.variant
                                          ELSE 'BAR-0' || ((g.variant % 8) + 1) END
               WHEN 'checkpoint_recharge' THEN 'CP-0' || ((g.variant % 3) + 1)
           END AS location
    FROM gen g
), chained AS (
    SELECT e.*,
           sum(e.effect) OVER (PARTITION BY e.card_no ORDER BY e.ts, e.src, e.seq
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS balance
    FROM effects e
)
INSERT INTO app_transaction_log (transaction_id, card_id, transaction_type, status, amount_involved,
                                 previous_balance, new_balance, "timestamp", details, edge_function_name,
                                 request_id, processing_time_ms, created_at)
SELECT md5('festival-tx-' || c.src || '-' || c.seq)::uuid,
       format('CARD-%s', lpad(c.card_no::text, 4, '0')),
       c.ttype,
       c.status,
       c.amount,
       c.balance - c.effect,
       c.balance,
       c.ts,
       CASE c.ttype
           WHEN 'bar_order' THEN jsonb_build_object('bar_location', c.location, 'pos_id', 'POS-' || c.location,
                                                    'items', 1 + c.variant % 4)
           WHEN 'checkpoint_recharge' THEN jsonb_build_object('checkpoint_id', c.location,
                                                              'staff_id', 'STAFF-' || lpad((c.variant % 12 + 1)::text, 2, '0'),
                                                              'payment_method', CASE WHEN c.variant % 2 = 0 THEN 'card' ELSE 'cash' END)
           ELSE jsonb_build_object('stripe_session_id', 'cs_live_' || substr(md5('stripe-' || c.src || c.seq), 1, 24))
       END
       || CASE WHEN c.error IS NOT NULL THEN jsonb_build_object('error', c.error) ELSE '{}'::jsonb END
       || CASE WHEN c.deducts THEN jsonb_build_object('note', 'balance debited before the POS confirmation timed out')
               ELSE '{}'::jsonb END,
       CASE c.ttype WHEN 'bar_order' THEN 'process-bar-order'
                    WHEN 'checkpoint_recharge' THEN 'process-checkpoint-recharge'
                    ELSE 'stripe-webhook' END,
       'req-' || substr(md5('req-' || c.src || '-' || c.seq), 1, 16),
       CASE WHEN c.error = 'stripe_api_timeout' THEN 10000 + c.seq * 100
            WHEN c.error IN ('edge_function_timeout', 'pos_timeout') THEN 9800
            WHEN c.error IS NOT NULL THEN 2500 + c.seq * 10
            WHEN c.ttype = 'bar_order' THEN 80 + (c.variant * 37) % 220
            WHEN c.ttype = 'checkpoint_recharge' THEN 150 + (c.variant * 17) % 200
            ELSE 300 + (c.variant * 29) % 400 END,
       c.ts
FROM chained c
ORDER BY c.ts, c.src, c.seq;

-- Card balance = what its transactions did to it (so the failed debit of
-- CARD-0202 is in it) ...
UPDATE table_cards c
SET amount = s.balance, updated_at = s.last_at
FROM (SELECT l.card_id, sum(l.new_balance - l.previous_balance) AS balance, max(l."timestamp") AS last_at
      FROM app_transaction_log l GROUP BY l.card_id) AS s
WHERE s.card_id = c.id;

-- ... plus an unlogged 25.00 credit on CARD-0101 three hours ago.
UPDATE table_cards SET amount = amount + 25.00, updated_at = now() - interval '3 hours'
WHERE id = 'CARD-0101';

-- ---------------------------------------------------------------------------
-- NFC scans: one read 1.5 s before every bar order / checkpoint recharge
-- ---------------------------------------------------------------------------

INSERT INTO nfc_scan_log (card_id_scanned, scan_timestamp, scan_status, scan_location, device_identifier,
                          transaction_id, processing_time_ms, error_message, created_at)
SELECT l.card_id,
       l."timestamp" - interval '1500 milliseconds',
       CASE WHEN l.details ->> 'error' IN ('nfc_reader_timeout', 'card_read_error') THEN 'error' ELSE 'success' END,
       coalesce(l.details ->> 'bar_location', l.details ->> 'checkpoint_id'),
       'NFC-' || coalesce(l.details ->> 'bar_location', l.details ->> 'checkpoint_id'),
       l.transaction_id,
       35 + (l.log_id % 60)::integer,
       CASE WHEN l.details ->> 'error' IN ('nfc_reader_timeout', 'card_read_error') THEN l.details ->> 'error' END,
       l."timestamp" - interval '1500 milliseconds'
FROM app_transaction_log l
WHERE l.transaction_type IN ('bar_order', 'checkpoint_recharge')
ORDER BY l."timestamp";

-- CARD-0404 read twice more right after its order (debouncer marked them).
INSERT INTO nfc_scan_log (card_id_scanned, scan_timestamp, scan_status, scan_location, device_identifier,
                          processing_time_ms, created_at)
SELECT s.card_id_scanned, s.scan_timestamp + d.delay, 'duplicate', s.scan_location, s.device_identifier, 41,
       s.scan_timestamp + d.delay
FROM nfc_scan_log s
CROSS JOIN (VALUES (interval '400 milliseconds'), (interval '1300 milliseconds')) AS d(delay)
WHERE s.card_id_scanned = 'CARD-0404' AND s.scan_timestamp > now() - interval '5 minutes'
ORDER BY 2;

-- Earlier duplicate reads (balance checks tapped twice), already handled.
INSERT INTO nfc_scan_log (card_id_scanned, scan_timestamp, scan_status, scan_location, device_identifier,
                          processing_time_ms, created_at)
SELECT d.card_id, now() - d.ago + r.delay, r.status, d.location, 'NFC-' || d.location, 38,
       now() - d.ago + r.delay
FROM (VALUES ('CARD-0077', interval '50 hours', 'BAR-01'), ('CARD-0150', interval '44 hours', 'BAR-04'),
             ('CARD-0233', interval '31 hours', 'CP-02'), ('CARD-0318', interval '20 hours', 'BAR-06'),
             ('CARD-0512', interval '6 hours', 'BAR-02')) AS d(card_id, ago, location)
CROSS JOIN (VALUES (interval '0', 'success'), (interval '600 milliseconds', 'duplicate')) AS r(delay, status)
ORDER BY 2;

-- ---------------------------------------------------------------------------
-- Monitoring events found (and resolved) before the load
-- ---------------------------------------------------------------------------

INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp, card_id,
                               transaction_id, affected_amount, confidence_score, detection_data, context,
                               resolved_at, resolution_notes, created_at, updated_at)
SELECT e.event_type, e.severity::event_severity, e.status, e.algorithm,
       now() - e.ago,
       e.card_id,
       CASE WHEN e.algorithm = 'consecutive_failures'
            THEN (SELECT l.transaction_id FROM app_transaction_log l
                  WHERE l.card_id = e.card_id AND l.status = 'failed'
                    AND l."timestamp" <= now() - e.ago
                  ORDER BY l."timestamp" DESC LIMIT 1) END,
       e.amount, e.confidence,
       e.data::jsonb,
       jsonb_build_object('alert', e.alert),
       now() - e.ago + e.resolved_after,
       e.notes,
       now() - e.ago - e.delay,
       now() - e.ago + e.resolved_after
FROM (VALUES
    -- festival days
    ('duplicate_nfc', 'MEDIUM', 'RESOLVED', 'duplicate_nfc_detection', interval '50 hours', 'CARD-0077', NULL::numeric, 0.80,
     '{"scan_count": 2, "span_ms": 600}', 'Duplicate NFC scans detected', interval '12 minutes',
     'Debouncer rejected the second read; no duplicate charge', interval '4 seconds'),
    ('balance_discrepancy', 'CRITICAL', 'FALSE_POSITIVE', 'balance_mismatch_detection', interval '47 hours', 'CARD-0264', 5.00, 0.70,
     '{"discrepancy": 5.00, "note": "read during a concurrent recharge"}', 'Card balance mismatch detected', interval '18 minutes',
     'Race between a checkpoint recharge and a bar order; balances reconciled on re-check', interval '9 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'FALSE_POSITIVE', 'duplicate_nfc_detection', interval '44 hours', 'CARD-0150', NULL, 0.60,
     '{"scan_count": 2, "span_ms": 600}', 'Duplicate NFC scans detected', interval '30 minutes',
     'Customer checked the balance twice; no order', interval '6 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'RESOLVED', 'duplicate_nfc_detection', interval '31 hours', 'CARD-0233', NULL, 0.80,
     '{"scan_count": 2, "span_ms": 600}', 'Duplicate NFC scans detected', interval '15 minutes',
     'No duplicate recharge; checkpoint CP-02 debounce timer raised to 1.5 s', interval '5 seconds'),
    ('transaction_failure', 'HIGH', 'RESOLVED', 'consecutive_failures', interval '29 hours 55 minutes', 'CARD-0042', 19.50, 0.90,
     '{"failure_count": 3, "errors": ["card_read_error"]}', 'Multiple consecutive failures for same card', interval '25 minutes',
     'NFC reader at BAR-03 replaced; customer served at BAR-04', interval '11 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'FALSE_POSITIVE', 'duplicate_nfc_detection', interval '20 hours', 'CARD-0318', NULL, 0.60,
     '{"scan_count": 2, "span_ms": 600}', 'Duplicate NFC scans detected', interval '40 minutes',
     'Balance check tapped twice; no financial impact', interval '7 seconds'),
    ('race_condition', 'LOW', 'RESOLVED', 'concurrent_update_detection', interval '15 hours', 'CARD-0388', NULL, 0.55,
     '{"concurrent_requests": 2, "window_ms": 180}', 'Concurrent balance updates', interval '1 hour',
     'Optimistic lock retried successfully; balance correct', interval '3 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'RESOLVED', 'duplicate_nfc_detection', interval '6 hours', 'CARD-0512', NULL, 0.80,
     '{"scan_count": 2, "span_ms": 600}', 'Duplicate NFC scans detected', interval '10 minutes',
     'Debouncer rejected the second read; no duplicate charge', interval '4 seconds'),
    -- pre-festival load test, 36 to 38 days ago (removed by cleanup_monitoring_data(30))
    ('transaction_failure', 'HIGH', 'RESOLVED', 'consecutive_failures', interval '38 days', 'CARD-0005', 12.00, 0.90,
     '{"failure_count": 4, "errors": ["pos_timeout"]}', 'Multiple consecutive failures for same card', interval '20 minutes',
     'Load test: POS timeout raised from 3 s to 8 s', interval '8 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'FALSE_POSITIVE', 'duplicate_nfc_detection', interval '38 days', 'CARD-0006', NULL, 0.50,
     '{"scan_count": 2}', 'Duplicate NFC scans detected', interval '5 minutes', 'Load test script tapped twice', interval '3 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'FALSE_POSITIVE', 'duplicate_nfc_detection', interval '37 days 23 hours', 'CARD-0007', NULL, 0.50,
     '{"scan_count": 2}', 'Duplicate NFC scans detected', interval '5 minutes', 'Load test script tapped twice', interval '3 seconds'),
    ('balance_discrepancy', 'CRITICAL', 'RESOLVED', 'balance_mismatch_detection', interval '37 days 20 hours', 'CARD-0008', 10.00, 1.00,
     '{"discrepancy": 10.00}', 'Card balance mismatch detected', interval '45 minutes',
     'Test data reset; not a production card', interval '12 seconds'),
    ('race_condition', 'LOW', 'RESOLVED', 'concurrent_update_detection', interval '37 days 2 hours', 'CARD-0009', NULL, 0.60,
     '{"concurrent_requests": 3}', 'Concurrent balance updates', interval '30 minutes', 'Expected under load test', interval '2 seconds'),
    ('system_health', 'HIGH', 'RESOLVED', 'system_health_snapshot', interval '37 days', NULL, NULL, 1.00,
     '{"overall_health_status": "CRITICAL", "success_rate_percent": 91.2}', 'System health CRITICAL', interval '35 minutes',
     'Load test peak: 10x traffic; edge function concurrency raised to 10', interval '1 second'),
    ('transaction_failure', 'CRITICAL', 'RESOLVED', 'balance_deduction_on_failure', interval '36 days 22 hours', 'CARD-0010', 4.50, 0.95,
     '{"previous_balance": 20.00, "new_balance": 15.50}', 'Balance deducted on failed transaction', interval '50 minutes',
     'Manual correction applied; bug fixed in process-bar-order v1.4', interval '10 seconds'),
    ('duplicate_nfc', 'MEDIUM', 'RESOLVED', 'duplicate_nfc_detection', interval '36 days 5 hours', 'CARD-0011', NULL, 0.80,
     '{"scan_count": 3}', 'Duplicate NFC scans detected', interval '15 minutes', 'Debounce window set to 2 s', interval '4 seconds'),
    ('transaction_failure', 'HIGH', 'FALSE_POSITIVE', 'consecutive_failures', interval '36 days', 'CARD-0012', 9.00, 0.70,
     '{"failure_count": 3, "errors": ["insufficient_balance"]}', 'Multiple consecutive failures for same card', interval '10 minutes',
     'Insufficient balance: expected behaviour', interval '6 seconds')
) AS e(event_type, severity, status, algorithm, ago, card_id, amount, confidence, data, alert, resolved_after, notes, delay)
ORDER BY e.ago DESC;

-- ---------------------------------------------------------------------------
-- Health snapshots: hourly from 40 days ago, every 5 minutes during the
-- festival (72 h), computed from the data above
-- ---------------------------------------------------------------------------

INSERT INTO system_health_snapshots
    (snapshot_timestamp, total_transactions_last_hour, successful_transactions_last_hour,
     failed_transactions_last_hour, success_rate_percent, avg_processing_time_ms, p95_processing_time_ms,
     total_volume_last_hour, active_cards_last_hour, nfc_scans_last_hour, duplicate_nfc_scans_last_hour,
     monitoring_events_last_hour, critical_events_last_hour, open_critical_events, overall_health_status,
     metrics, created_at)
SELECT m.snapshot_timestamp, m.total_transactions_last_hour, m.successful_transactions_last_hour,
       m.failed_transactions_last_hour, m.success_rate_percent, m.avg_processing_time_ms, m.p95_processing_time_ms,
       m.total_volume_last_hour, m.active_cards_last_hour, m.nfc_scans_last_hour, m.duplicate_nfc_scans_last_hour,
       m.monitoring_events_last_hour, m.critical_events_last_hour, m.open_critical_events, m.overall_health_status,
       jsonb_build_object('source', CASE WHEN t.ts < now() - interval '72 hours' THEN 'hourly' ELSE '5min' END),
       t.ts
FROM (
    SELECT now() - interval '40 days' + h * interval '1 hour' AS ts
    FROM generate_series(0, 40 * 24 - 73) AS h
    UNION ALL
    SELECT now() - n * interval '5 minutes' FROM generate_series(1, 864) AS n
) AS t
CROSS JOIN LATERAL festival_health_metrics(t.ts) AS m
ORDER BY t.ts;

-- The heartbeat event of every festival snapshot (all superseded by now).
INSERT INTO monitoring_events (event_type, severity, status, detection_algorithm, detection_timestamp,
                               confidence_score, detection_data, context, resolved_at, resolution_notes,
                               created_at, updated_at)
SELECT 'system_health',
       CASE s.overall_health_status WHEN 'HEALTHY' THEN 'LOW' WHEN 'WARNING' THEN 'MEDIUM'
                                    ELSE 'HIGH' END::event_severity,
       'RESOLVED',
       'system_health_snapshot',
       s.snapshot_timestamp + interval '400 milliseconds',
       1.00,
       jsonb_build_object('snapshot_id', s.snapshot_id, 'overall_health_status', s.overall_health_status,
                          'success_rate_percent', s.success_rate_percent,
                          'avg_processing_time_ms', s.avg_processing_time_ms,
                          'total_transactions_last_hour', s.total_transactions_last_hour,
                          'open_critical_events', s.open_critical_events),
       jsonb_build_object('alert', 'System health ' || s.overall_health_status),
       CASE WHEN s.overall_health_status = 'HEALTHY' THEN s.snapshot_timestamp + interval '900 milliseconds'
            ELSE s.snapshot_timestamp + interval '5 minutes' END,
       CASE WHEN s.overall_health_status = 'HEALTHY' THEN 'heartbeat: healthy'
            ELSE 'superseded by the next snapshot' END,
       s.snapshot_timestamp,
       s.snapshot_timestamp + interval '900 milliseconds'
FROM system_health_snapshots s
WHERE s.metrics ->> 'source' = '5min'
ORDER BY s.snapshot_timestamp;

-- Alerts that went out for the HIGH/CRITICAL events above (and the first CRITICAL snapshot of the festival).
INSERT INTO alert_history (monitoring_event_id, alert_level, alert_channel, recipient, alert_message, sent_at,
                           delivery_status, acknowledged_at, acknowledged_by, escalated)
SELECT e.event_id, e.severity, ch.channel, ch.recipient,
       format('[%s] %s: %s (card %s)', e.severity, e.event_type, e.context ->> 'alert', coalesce(e.card_id, '-')),
       e.detection_timestamp + interval '2 seconds',
       'delivered',
       e.detection_timestamp + interval '3 minutes',
       CASE WHEN e.severity = 'CRITICAL' THEN 'ops.manager' ELSE 'tech.lead' END,
       false
FROM monitoring_events e
JOIN (VALUES ('CRITICAL'::event_severity, 'phone', 'Festival Operations Manager'),
             ('CRITICAL'::event_severity, 'sms', 'Festival Operations Manager'),
             ('HIGH'::event_severity, 'sms', 'Technical Team Lead'),
             ('HIGH'::event_severity, 'slack', '#festival-tech')) AS ch(sev, channel, recipient)
  ON ch.sev = e.severity
WHERE e.event_type <> 'system_health'
   OR e.event_id = (SELECT min(e2.event_id) FROM monitoring_events e2
                    WHERE e2.event_type = 'system_health' AND e2.severity = 'HIGH'
                      AND e2.detection_timestamp > now() - interval '3 days')
ORDER BY e.event_id, ch.channel;

-- ---------------------------------------------------------------------------
-- One detection cycle now: finds the planted faults, snapshot, alerts.
-- ---------------------------------------------------------------------------

SELECT * FROM run_monitoring_cycle();
SELECT * FROM refresh_monitoring_views();
