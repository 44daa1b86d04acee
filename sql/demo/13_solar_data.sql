-- 13_solar_data.sql - solar production data, monitoring configuration,
-- 95 days of monitoring history and the planted faults.
--
-- Deterministic: no random(); all variation is arithmetic on row numbers, and
-- every timestamp is relative to now() (the load time).
--
-- The story the data tells (see README.md, "Planted faults"):
--   41 hours ago the MES bulk synchronisation (incident INC-2417) was blocked
--   by two panel constraints, so the on-call DBA rolled them back with
--   rollback_constraint(); the sync then loaded 152 panels that break them, and
--   recover_constraint() could only re-create them NOT VALID. Since then the
--   workflow rule is CRITICAL (140 rows) and the electrical rule WARNING (12).
--   Smaller issues: 3 pallets whose panel_count is out of sync, 2 MOs whose
--   completed_quantity is wrong, 3 FAIL inspections without notes.

-- JIT compilation (on by default where LLVM is installed) would make this
-- bulk load several times slower; the setting ends with this file's transaction.
SET LOCAL jit = off;

-- ---------------------------------------------------------------------------
-- Reference data
-- ---------------------------------------------------------------------------

INSERT INTO users (username, email, full_name, role, is_active, created_at, last_login_at)
SELECT u.username, u.email, u.full_name, u.role, u.active,
       now() - make_interval(days => 500 - 12 * u.n),
       CASE WHEN u.active THEN now() - make_interval(hours => 2 * u.n) END
FROM (VALUES
    ( 1, 'marc.dubois',     'marc.dubois@solarworks.example',     'Marc Dubois',      'ADMIN',             true),
    ( 2, 'lies.janssens',   'lies.janssens@solarworks.example',   'Lies Janssens',    'QC_MANAGER',        true),
    ( 3, 'tom.peeters',     'tom.peeters@solarworks.example',     'Tom Peeters',      'SUPERVISOR',        true),
    ( 4, 'an.maes',         'an.maes@solarworks.example',         'An Maes',          'SUPERVISOR',        true),
    ( 5, 'koen.willems',    'koen.willems@solarworks.example',    'Koen Willems',     'STATION_INSPECTOR', true),
    ( 6, 'sofie.claes',     'sofie.claes@solarworks.example',     'Sofie Claes',      'STATION_INSPECTOR', true),
    ( 7, 'pieter.goossens', 'pieter.goossens@solarworks.example', 'Pieter Goossens',  'STATION_INSPECTOR', true),
    ( 8, 'eva.wouters',     'eva.wouters@solarworks.example',     'Eva Wouters',      'STATION_INSPECTOR', true),
    ( 9, 'jan.mertens',     'jan.mertens@solarworks.example',     'Jan Mertens',      'STATION_INSPECTOR', true),
    (10, 'ines.jacobs',     'ines.jacobs@solarworks.example',     'Ines Jacobs',      'STATION_INSPECTOR', true),
    (11, 'bart.vermeulen',  'bart.vermeulen@solarworks.example',  'Bart Vermeulen',   'OPERATOR',          true),
    (12, 'nina.hermans',    'nina.hermans@solarworks.example',    'Nina Hermans',     'OPERATOR',          true),
    (13, 'wout.desmet',     'wout.desmet@solarworks.example',     'Wout De Smet',     'OPERATOR',          true),
    (14, 'lotte.pauwels',   'lotte.pauwels@solarworks.example',   'Lotte Pauwels',    'OPERATOR',          true),
    (15, 'ruben.dewilde',   'ruben.dewilde@solarworks.example',   'Ruben De Wilde',   'OPERATOR',          true),
    (16, 'hanne.lambrechts','hanne.lambrechts@solarworks.example','Hanne Lambrechts', 'OPERATOR',          true),
    (17, 'stijn.aerts',     'stijn.aerts@solarworks.example',     'Stijn Aerts',      'OPERATOR',          true),
    (18, 'emma.segers',     'emma.segers@solarworks.example',     'Emma Segers',      'OPERATOR',          true),
    (19, 'mes.integration', 'mes-integration@solarworks.example', 'MES Integration',  'OPERATOR',          true),
    (20, 'dirk.smets',      'dirk.smets@solarworks.example',      'Dirk Smets',       'OPERATOR',          false)
) AS u(n, username, email, full_name, role, active)
ORDER BY u.n;

INSERT INTO stations (station_code, line, station_number, name, station_type, created_at)
SELECT s.code, s.line, s.num, s.name, s.stype, now() - interval '500 days'
FROM (VALUES
    ('L1-S1', 'LINE_1', 1, 'Line 1 - Assembly & EL',                  'ASSEMBLY_EL'),
    ('L1-S2', 'LINE_1', 2, 'Line 1 - Framing',                        'FRAMING'),
    ('L1-S3', 'LINE_1', 3, 'Line 1 - Junction Box',                   'JUNCTION_BOX'),
    ('L1-S4', 'LINE_1', 4, 'Line 1 - Performance & Final Inspection', 'PERFORMANCE_FINAL'),
    ('L2-S1', 'LINE_2', 1, 'Line 2 - Assembly & EL',                  'ASSEMBLY_EL'),
    ('L2-S2', 'LINE_2', 2, 'Line 2 - Framing',                        'FRAMING'),
    ('L2-S3', 'LINE_2', 3, 'Line 2 - Junction Box',                   'JUNCTION_BOX'),
    ('L2-S4', 'LINE_2', 4, 'Line 2 - Performance & Final Inspection', 'PERFORMANCE_FINAL')
) AS s(code, line, num, name, stype)
ORDER BY s.code;

-- 24 manufacturing orders, one every 5 days: 18 COMPLETED, 4 ACTIVE, 1 ON_HOLD, 1 PLANNED.
INSERT INTO manufacturing_orders (order_number, panel_type, target_quantity, completed_quantity, status,
                                  customer, created_by, created_at, started_at, completed_at, updated_at)
SELECT format('MO-%s-%s', to_char(m.created_at, 'YYYY'), lpad(m.n::text, 4, '0')),
       (ARRAY['36', '40', '60', '72', '144'])[(m.n % 5) + 1],
       m.target,
       CASE WHEN m.status = 'COMPLETED' THEN m.target ELSE 0 END,
       m.status,
       (ARRAY['Helios Energy BV', 'NordSun AG', 'Zonnepark Kempen', 'SunRoof Direct', 'Agri-PV Flanders'])[(m.n % 5) + 1],
       (SELECT id FROM users WHERE username = 'tom.peeters'),
       m.created_at,
       CASE WHEN m.status <> 'PLANNED' THEN m.created_at + interval '2 hours' END,
       CASE WHEN m.status = 'COMPLETED' THEN m.created_at + interval '6 days' END,
       CASE WHEN m.status = 'COMPLETED' THEN m.created_at + interval '6 days' ELSE m.created_at END
FROM (
    SELECT n,
           now() - make_interval(days => (24 - n) * 5 + 10) AS created_at,
           CASE WHEN n <= 18 THEN 'COMPLETED' WHEN n <= 22 THEN 'ACTIVE'
                WHEN n = 23 THEN 'ON_HOLD' ELSE 'PLANNED' END AS status,
           CASE WHEN n <= 18 THEN 80 WHEN n <= 22 THEN 200 WHEN n = 23 THEN 120 ELSE 150 END AS target
    FROM generate_series(1, 24) AS n
) AS m
ORDER BY m.n;

-- ---------------------------------------------------------------------------
-- Panels (valid data: every constraint holds)
-- ---------------------------------------------------------------------------

WITH mo AS (
    SELECT m.id, row_number() OVER (ORDER BY m.id) AS n, m.panel_type, m.status, m.created_at
    FROM manufacturing_orders m
), ops AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'OPERATOR' AND is_active
), slots AS (
    SELECT mo.id AS mo_id, mo.n, mo.panel_type, mo.created_at AS mo_created, k,
           CASE mo.status
               WHEN 'COMPLETED' THEN mo.created_at + k * interval '100 minutes'
               WHEN 'ACTIVE' THEN now() - (120 - k) * interval '2 hours' - (22 - mo.n) * interval '25 minutes'
               ELSE mo.created_at + k * interval '2 hours'
           END AS start_ts,
           CASE mo.status
               WHEN 'COMPLETED' THEN CASE WHEN k IN (17, 61) THEN 'FAILED' ELSE 'COMPLETED' END
               WHEN 'ON_HOLD' THEN CASE WHEN k <= 20 THEN 'COMPLETED' ELSE 'IN_PROGRESS_2' END
               ELSE CASE WHEN k <= 90 AND k % 31 = 0 THEN 'FAILED'
                         WHEN k <= 90 AND k % 43 = 0 THEN 'REWORK'
                         WHEN k <= 90 THEN 'COMPLETED'
                         WHEN k <= 100 THEN 'IN_PROGRESS_4'
                         WHEN k <= 108 THEN 'IN_PROGRESS_3'
                         WHEN k <= 112 THEN 'IN_PROGRESS_2'
                         WHEN k <= 116 THEN 'IN_PROGRESS_1'
                         ELSE 'PENDING' END
           END AS phase
    FROM mo
    CROSS JOIN LATERAL generate_series(1, CASE mo.status WHEN 'COMPLETED' THEN 82 WHEN 'ACTIVE' THEN 120
                                                        WHEN 'ON_HOLD' THEN 30 ELSE 0 END) AS k
), staged AS (
    SELECT s.*,
           CASE s.phase WHEN 'COMPLETED' THEN 4 WHEN 'FAILED' THEN 3 WHEN 'REWORK' THEN 2
                        WHEN 'IN_PROGRESS_4' THEN 3 WHEN 'IN_PROGRESS_3' THEN 2
                        WHEN 'IN_PROGRESS_2' THEN 1 ELSE 0 END AS done,
           CASE s.phase WHEN 'COMPLETED' THEN NULL WHEN 'FAILED' THEN 4 WHEN 'REWORK' THEN 2
                        WHEN 'IN_PROGRESS_4' THEN 4 WHEN 'IN_PROGRESS_3' THEN 3
                        WHEN 'IN_PROGRESS_2' THEN 2 WHEN 'IN_PROGRESS_1' THEN 1 ELSE NULL END AS at_station,
           CASE s.panel_type WHEN '144' THEN 'LINE_2' ELSE 'LINE_1' END AS line,
           s.start_ts + interval '30 minutes' + (s.k % 7) * interval '1 minute' AS t1,
           ((s.k * 37 + s.n * 11) % 41 - 20) / 1000.0 AS jitter
    FROM slots s
), measured AS (
    SELECT st.*,
           st.t1 + interval '60 minutes' + (st.k % 11) * interval '1 minute' AS t2,
           round(nom.vmp * (1 + st.jitter), 2) AS vmp,
           round(nom.imp * (1 - st.jitter / 2), 2) AS imp
    FROM staged st
    JOIN (VALUES ('36', 18.90, 10.05), ('40', 21.00, 10.10), ('60', 31.20, 10.58),
                 ('72', 37.60, 10.64), ('144', 41.70, 13.19)) AS nom(ptype, vmp, imp)
      ON nom.ptype = st.panel_type
)
INSERT INTO panels (barcode, panel_type, line_assignment, manufacturing_order_id, current_station_id, status,
                    station_1_completed_at, station_2_completed_at, station_3_completed_at, station_4_completed_at,
                    wattage_pmax, vmp, imp, voc, isc, created_by, created_at, updated_at)
SELECT 'CRS' || to_char(m.mo_created, 'YY')
             || CASE WHEN m.k % 2 = 0 THEN 'F' ELSE 'B' END
             || (ARRAY['T', 'W', 'B'])[(m.n % 3) + 1]
             || m.panel_type
             || lpad((m.n * 1000 + m.k)::text, 5, '0'),
       m.panel_type,
       m.line,
       m.mo_id,
       (SELECT s.id FROM stations s WHERE s.line = m.line AND s.station_number = m.at_station),
       CASE WHEN m.phase LIKE 'IN_PROGRESS%' THEN 'IN_PROGRESS' ELSE m.phase END,
       CASE WHEN m.done >= 1 THEN m.t1 END,
       CASE WHEN m.done >= 2 THEN m.t2 END,
       CASE WHEN m.done >= 3 THEN m.t2 + interval '50 minutes' END,
       CASE WHEN m.done >= 4 THEN m.t2 + interval '170 minutes' END,
       CASE WHEN m.phase = 'COMPLETED' THEN round(m.vmp * m.imp, 2)
            WHEN m.phase = 'FAILED' THEN round(m.vmp * m.imp * 0.86, 2) END,
       CASE WHEN m.phase IN ('COMPLETED', 'FAILED') THEN m.vmp END,
       CASE WHEN m.phase IN ('COMPLETED', 'FAILED') THEN m.imp END,
       CASE WHEN m.phase IN ('COMPLETED', 'FAILED') THEN round(m.vmp * 1.21, 2) END,
       CASE WHEN m.phase IN ('COMPLETED', 'FAILED') THEN round(m.imp * 1.055, 2) END,
       ops.ids[(m.k % array_length(ops.ids, 1)) + 1],
       m.start_ts,
       CASE m.done WHEN 4 THEN m.t2 + interval '170 minutes' WHEN 3 THEN m.t2 + interval '50 minutes'
                   WHEN 2 THEN m.t2 WHEN 1 THEN m.t1 ELSE m.start_ts END
FROM measured m CROSS JOIN ops
ORDER BY m.mo_id, m.k;

-- One inspection per completed station; failures and rework say why.
WITH insp AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'STATION_INSPECTOR'
)
INSERT INTO inspections (panel_id, station_id, inspector_id, result, notes, criteria, inspected_at)
SELECT p.id, st.id, insp.ids[((p.id + s.num) % array_length(insp.ids, 1)) + 1],
       'PASS', NULL,
       jsonb_build_object('checklist', st.station_type, 'items_checked', 6 + s.num, 'items_failed', 0),
       s.ts
FROM panels p
CROSS JOIN insp
CROSS JOIN LATERAL (VALUES (1, p.station_1_completed_at), (2, p.station_2_completed_at),
                           (3, p.station_3_completed_at), (4, p.station_4_completed_at)) AS s(num, ts)
JOIN stations st ON st.line = p.line_assignment AND st.station_number = s.num
WHERE s.ts IS NOT NULL
ORDER BY p.id, s.num;

WITH insp AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'STATION_INSPECTOR'
)
INSERT INTO inspections (panel_id, station_id, inspector_id, result, notes, criteria, inspected_at)
SELECT p.id, st.id, insp.ids[(p.id % array_length(insp.ids, 1)) + 1],
       CASE p.status WHEN 'FAILED' THEN 'FAIL' ELSE 'REWORK' END,
       CASE p.status WHEN 'FAILED' THEN format('Pmax %s W below tolerance (flash test)', p.wattage_pmax)
                     ELSE 'EL image: micro-crack in cell string 3, re-laminate' END,
       jsonb_build_object('checklist', st.station_type, 'items_checked', 8, 'items_failed', 1),
       CASE p.status WHEN 'FAILED' THEN p.station_3_completed_at + interval '2 hours'
                     ELSE p.station_2_completed_at + interval '40 minutes' END
FROM panels p
CROSS JOIN insp
JOIN stations st ON st.line = p.line_assignment
                AND st.station_number = CASE p.status WHEN 'FAILED' THEN 4 ELSE 3 END
WHERE p.status IN ('FAILED', 'REWORK')
ORDER BY p.id;

-- ---------------------------------------------------------------------------
-- Pallets: 25 finished panels each, in order of final inspection
-- ---------------------------------------------------------------------------

CREATE TEMPORARY TABLE tmp_pallet_slots ON COMMIT DROP AS
SELECT p.id AS panel_id, p.manufacturing_order_id AS mo_id, p.station_4_completed_at AS done_at,
       (row_number() OVER (PARTITION BY p.manufacturing_order_id
                           ORDER BY p.station_4_completed_at, p.id) - 1) / 25 + 1 AS seq
FROM panels p
WHERE p.status = 'COMPLETED';

INSERT INTO pallets (pallet_number, manufacturing_order_id, capacity, panel_count, status,
                     created_at, closed_at, shipped_at)
SELECT format('PAL-%s-%s', substr(mo.order_number, 4), lpad(s.seq::text, 2, '0')),
       s.mo_id, 25, count(*),
       CASE WHEN mo.status = 'COMPLETED' THEN 'SHIPPED' WHEN count(*) = 25 THEN 'FULL' ELSE 'OPEN' END,
       min(s.done_at),
       CASE WHEN count(*) = 25 OR mo.status = 'COMPLETED' THEN max(s.done_at) END,
       CASE WHEN mo.status = 'COMPLETED' THEN mo.completed_at + interval '2 days' END
FROM tmp_pallet_slots s
JOIN manufacturing_orders mo ON mo.id = s.mo_id
GROUP BY s.mo_id, s.seq, mo.order_number, mo.status, mo.completed_at
ORDER BY s.mo_id, s.seq;

UPDATE panels p
SET pallet_id = pl.id
FROM tmp_pallet_slots s
JOIN manufacturing_orders mo ON mo.id = s.mo_id
JOIN pallets pl ON pl.pallet_number = format('PAL-%s-%s', substr(mo.order_number, 4), lpad(s.seq::text, 2, '0'))
WHERE p.id = s.panel_id;

-- ---------------------------------------------------------------------------
-- Monitoring, alerting and rollback configuration
-- ---------------------------------------------------------------------------

INSERT INTO constraint_monitoring_config
    (constraint_name, table_name, pg_constraint_name, rollback_name, constraint_type, business_rule,
     key_column, description, violation_threshold_critical, violation_threshold_warning,
     violation_threshold_attention, performance_threshold_ms, check_interval_minutes, created_at, updated_at)
SELECT c.cname, c.tname, c.pgname, c.rbname, c.ctype, c.rule, c.keycol, c.descr, c.crit, c.warn, c.attn,
       500, 60, now() - interval '120 days', now() - interval '120 days'
FROM (VALUES
    ('panel_workflow_constraints', 'panels', 'panels_workflow_progression_check', 'workflow_progression',
     'CHECK', NULL, 'barcode',
     'Panels must complete stations 1-4 in order; COMPLETED requires station 4; PENDING has no station completed',
     50, 10, 1),
    ('panel_station_progression_constraints', 'panels', 'panels_station_progression_check', 'station_progression',
     'CHECK', NULL, 'barcode',
     'Station completion timestamps must not go backwards (station N+1 after station N)',
     25, 5, 1),
    ('panel_barcode_constraints', 'panels', 'panels_barcode_format_check', 'barcode_format',
     'CHECK', NULL, 'barcode',
     'Barcode format CRS<YY><F|B><T|W|B><panel type><5-digit sequence>',
     20, 5, 1),
    ('panel_electrical_constraints', 'panels', 'panels_electrical_data_check', 'electrical_data',
     'CHECK', NULL, 'barcode',
     'Electrical test data all absent, or all present with Voc > Vmp, Isc > Imp and Pmax <= Voc x Isc',
     50, 10, 1),
    ('panel_type_line_constraints', 'panels', 'panels_panel_type_line_check', 'panel_type_line',
     'CHECK', NULL, 'barcode',
     '36/40/60/72-cell panels belong on LINE_1, 144-cell panels on LINE_2',
     20, 5, 1),
    ('mo_completion_constraints', 'manufacturing_orders', 'manufacturing_orders_mo_completion_check', 'mo_completion',
     'BUSINESS_RULE',
     't.completed_quantity <> (SELECT count(*) FROM public.panels p WHERE p.manufacturing_order_id = t.id AND p.status = ''COMPLETED'')',
     'order_number',
     'completed_quantity within 0..target (= target when COMPLETED) and equal to the number of COMPLETED panels of the MO',
     10, 5, 1),
    ('pallet_capacity_constraints', 'pallets', 'pallets_pallet_capacity_check', 'pallet_capacity',
     'BUSINESS_RULE',
     't.panel_count <> (SELECT count(*) FROM public.panels p WHERE p.pallet_id = t.id)',
     'pallet_number',
     'panel_count within 0..capacity (1..50) and equal to the number of panels actually on the pallet',
     10, 5, 1),
    ('inspection_result_constraints', 'inspections', 'inspections_inspection_result_check', 'inspection_result',
     'BUSINESS_RULE',
     't.result = ''FAIL'' AND coalesce(btrim(t.notes), '''') = ''''',
     'id',
     'Inspection result is PASS, FAIL or REWORK, and a FAIL records the reason in notes',
     50, 20, 5),
    ('user_email_constraints', 'users', 'users_email_format_check', 'email_format',
     'CHECK', NULL, 'username',
     'User e-mail addresses are well formed',
     10, 3, 1),
    ('station_number_constraints', 'stations', 'stations_station_number_check', 'station_number',
     'CHECK', NULL, 'station_code',
     'Station numbers are 1 to 4 on each line',
     5, 2, 1)
) AS c(cname, tname, pgname, rbname, ctype, rule, keycol, descr, crit, warn, attn);

INSERT INTO constraint_alert_config (alert_level, alert_channel, recipients, response_time_minutes,
                                     escalation_after_minutes, escalate_to, message_template, created_at)
VALUES
    ('CRITICAL', 'sms',       ARRAY['+32 470 00 00 01', '+32 470 00 00 02'], 15, 15, 'Production Supervisor',
     '🔴 CRITICAL {constraint_name} on {table_name}: {violation_count} violations', now() - interval '120 days'),
    ('CRITICAL', 'email',     ARRAY['dba-oncall@solarworks.example', 'production@solarworks.example'], 15, 15,
     'Production Supervisor', 'CRITICAL constraint violation: {constraint_name} ({violation_count})', now() - interval '120 days'),
    ('CRITICAL', 'pagerduty', ARRAY['solar-db-critical'], 15, 30, 'Quality Control Manager',
     'CRITICAL {constraint_name}', now() - interval '120 days'),
    ('WARNING',  'email',     ARRAY['dba-oncall@solarworks.example'], 60, 120, 'Database Administrator',
     'WARNING {constraint_name} on {table_name}: {violation_count} violations', now() - interval '120 days'),
    ('WARNING',  'slack',     ARRAY['#solar-db-alerts'], 60, NULL, NULL,
     ':large_yellow_circle: {constraint_name}: {violation_count} violations', now() - interval '120 days'),
    ('ATTENTION','dashboard', ARRAY['monitoring-dashboard'], 240, NULL, NULL,
     '{constraint_name}: {violation_count} violations', now() - interval '120 days');

INSERT INTO rollback_config (constraint_name, table_name, pg_constraint_name, constraint_type, monitoring_name,
                             rollback_priority, risk_level, business_impact, estimated_duration_ms,
                             requires_approval, rollback_strategy, recovery_strategy, description,
                             created_at, updated_at)
SELECT r.short, r.tname, r.pgname, 'CHECK', r.mon, r.prio, r.risk::risk_level, r.impact::risk_level, r.est,
       r.prio = 1, r.rb, r.rec, r.descr, now() - interval '120 days', now() - interval '120 days'
FROM (VALUES
    ('workflow_progression', 'panels', 'panels_workflow_progression_check', 'panel_workflow_constraints',
     1, 'HIGH', 'CRITICAL', 850, 'Incremental rollback after a data backup',
     'Fix panel stations first; re-create NOT VALID if legacy rows remain',
     'Station order and COMPLETED/PENDING consistency of panels'),
    ('station_progression', 'panels', 'panels_station_progression_check', 'panel_station_progression_constraints',
     1, 'HIGH', 'CRITICAL', 620, 'Workflow isolation; quality control on affected panels',
     'Re-create and validate', 'Chronological order of station completion timestamps'),
    ('barcode_format', 'panels', 'panels_barcode_format_check', 'panel_barcode_constraints',
     2, 'MEDIUM', 'HIGH', 300, 'Selective rollback with validation testing',
     'Re-create and validate', 'Barcode format of panels'),
    ('electrical_data', 'panels', 'panels_electrical_data_check', 'panel_electrical_constraints',
     2, 'MEDIUM', 'MEDIUM', 280, 'Data integrity checks, business validation',
     'Correct swapped Voc/Vmp values, then VALIDATE', 'Completeness and plausibility of flash-test results'),
    ('mo_completion', 'manufacturing_orders', 'manufacturing_orders_mo_completion_check', 'mo_completion_constraints',
     2, 'MEDIUM', 'MEDIUM', 150, 'Business logic validation, data consistency',
     'Recount completed panels, then re-create', 'completed_quantity bounds of manufacturing orders'),
    ('panel_type_line', 'panels', 'panels_panel_type_line_check', 'panel_type_line_constraints',
     3, 'MEDIUM', 'MEDIUM', 240, 'Selective rollback',
     'Re-create and validate', 'Panel type to production line assignment'),
    ('pallet_capacity', 'pallets', 'pallets_pallet_capacity_check', 'pallet_capacity_constraints',
     3, 'LOW', 'LOW', 90, 'Performance monitoring, capacity planning',
     'Re-create and validate', 'Pallet capacity bounds'),
    ('inspection_result', 'inspections', 'inspections_inspection_result_check', 'inspection_result_constraints',
     3, 'LOW', 'LOW', 400, 'Planned rollback in a maintenance window',
     'Re-create and validate', 'Allowed inspection results'),
    ('email_format', 'users', 'users_email_format_check', 'user_email_constraints',
     4, 'LOW', 'LOW', 40, 'Planned rollback in a maintenance window',
     'Re-create and validate', 'User e-mail format'),
    ('station_number', 'stations', 'stations_station_number_check', 'station_number_constraints',
     4, 'LOW', 'LOW', 25, 'Planned rollback in a maintenance window',
     'Re-create and validate', 'Station numbers 1-4')
) AS r(short, tname, pgname, mon, prio, risk, impact, est, rb, rec, descr);

-- The definitions recover_constraint() falls back to: straight from the catalog.
UPDATE rollback_config r
SET constraint_definition = regexp_replace(pg_get_constraintdef(c.oid), '\s+NOT VALID$', '')
FROM pg_constraint c
WHERE c.conrelid = to_regclass(format('public.%I', r.table_name))
  AND c.conname = r.pg_constraint_name;

DO $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(constraint_name, ', ') INTO v_missing
    FROM rollback_config WHERE constraint_definition IS NULL;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'rollback_config entries without a real constraint: %', v_missing;
    END IF;
    SELECT string_agg(c.constraint_name, ', ') INTO v_missing
    FROM constraint_monitoring_config c
    WHERE NOT EXISTS (SELECT 1 FROM rollback_config r
                      WHERE r.table_name = c.table_name AND r.pg_constraint_name = c.pg_constraint_name);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'monitoring entries without rollback configuration: %', v_missing;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Incident INC-2417 (41 hours ago): the planted constraint faults
-- ---------------------------------------------------------------------------

SELECT * FROM rollback_constraint('workflow_progression', 'panels', 'DROP_CONSTRAINT');
SELECT * FROM rollback_constraint('electrical_data', 'panels', 'DROP_CONSTRAINT');

-- 140 panels that break the workflow rule: 100 COMPLETED without station 4,
-- 40 with station 3 done but station 2 missing; 35 per active MO.
WITH mo AS (
    SELECT m.id, row_number() OVER (ORDER BY m.id) AS n, m.panel_type, m.created_at
    FROM manufacturing_orders m
), active AS (
    SELECT mo.*, row_number() OVER (ORDER BY mo.id) AS a
    FROM mo JOIN manufacturing_orders m ON m.id = mo.id
    WHERE m.status = 'ACTIVE'
), legacy AS (
    SELECT active.*, j,
           now() - interval '41 hours' + (active.a * 35 + j) * interval '80 seconds' AS loaded_at
    FROM active CROSS JOIN generate_series(1, 35) AS j
)
INSERT INTO panels (barcode, panel_type, line_assignment, manufacturing_order_id, current_station_id, status,
                    station_1_completed_at, station_2_completed_at, station_3_completed_at, station_4_completed_at,
                    wattage_pmax, vmp, imp, voc, isc, created_by, created_at, updated_at)
SELECT 'CRS' || to_char(r.created_at, 'YY') || 'F' || 'W' || r.panel_type || lpad((r.n * 1000 + 500 + r.j)::text, 5, '0'),
       r.panel_type,
       CASE r.panel_type WHEN '144' THEN 'LINE_2' ELSE 'LINE_1' END,
       r.id,
       CASE WHEN r.j > 25 THEN (SELECT s.id FROM stations s
                                WHERE s.line = CASE r.panel_type WHEN '144' THEN 'LINE_2' ELSE 'LINE_1' END
                                  AND s.station_number = 4) END,
       CASE WHEN r.j <= 25 THEN 'COMPLETED' ELSE 'IN_PROGRESS' END,
       r.loaded_at - interval '6 hours',
       CASE WHEN r.j <= 25 THEN r.loaded_at - interval '5 hours' END,
       r.loaded_at - interval '4 hours',
       NULL,
       CASE WHEN r.j <= 25 THEN round(nom.vmp * nom.imp, 2) END,
       CASE WHEN r.j <= 25 THEN nom.vmp END,
       CASE WHEN r.j <= 25 THEN nom.imp END,
       CASE WHEN r.j <= 25 THEN round(nom.vmp * 1.21, 2) END,
       CASE WHEN r.j <= 25 THEN round(nom.imp * 1.055, 2) END,
       (SELECT id FROM users WHERE username = 'mes.integration'),
       r.loaded_at,
       r.loaded_at
FROM legacy r
JOIN (VALUES ('36', 18.90, 10.05), ('40', 21.00, 10.10), ('60', 31.20, 10.58),
             ('72', 37.60, 10.64), ('144', 41.70, 13.19)) AS nom(ptype, vmp, imp)
  ON nom.ptype = r.panel_type
ORDER BY r.id, r.j;

-- 12 COMPLETED panels whose flash-test Voc and Vmp were swapped by the sync.
WITH mo AS (
    SELECT m.id, row_number() OVER (ORDER BY m.id) AS n, m.panel_type, m.created_at
    FROM manufacturing_orders m
), active AS (
    SELECT mo.*, row_number() OVER (ORDER BY mo.id) AS a
    FROM mo JOIN manufacturing_orders m ON m.id = mo.id
    WHERE m.status = 'ACTIVE'
), legacy AS (
    SELECT active.*, j,
           now() - interval '39 hours' + (active.a * 3 + j) * interval '7 minutes' AS loaded_at
    FROM active CROSS JOIN generate_series(1, 3) AS j
)
INSERT INTO panels (barcode, panel_type, line_assignment, manufacturing_order_id, status,
                    station_1_completed_at, station_2_completed_at, station_3_completed_at, station_4_completed_at,
                    wattage_pmax, vmp, imp, voc, isc, created_by, created_at, updated_at)
SELECT 'CRS' || to_char(r.created_at, 'YY') || 'B' || 'W' || r.panel_type || lpad((r.n * 1000 + 600 + r.j)::text, 5, '0'),
       r.panel_type,
       CASE r.panel_type WHEN '144' THEN 'LINE_2' ELSE 'LINE_1' END,
       r.id,
       'COMPLETED',
       r.loaded_at - interval '5 hours',
       r.loaded_at - interval '4 hours',
       r.loaded_at - interval '3 hours',
       r.loaded_at - interval '1 hour',
       round(nom.vmp * nom.imp, 2),
       round(nom.vmp * 1.21, 2),    -- Vmp and Voc swapped: Voc < Vmp
       nom.imp,
       nom.vmp,
       round(nom.imp * 1.055, 2),
       (SELECT id FROM users WHERE username = 'mes.integration'),
       r.loaded_at,
       r.loaded_at
FROM legacy r
JOIN (VALUES ('36', 18.90, 10.05), ('40', 21.00, 10.10), ('60', 31.20, 10.58),
             ('72', 37.60, 10.64), ('144', 41.70, 13.19)) AS nom(ptype, vmp, imp)
  ON nom.ptype = r.panel_type
ORDER BY r.id, r.j;

-- Recovery can only re-create them NOT VALID: the new rows break them.
SELECT * FROM recover_constraint('workflow_progression', 'panels');
SELECT * FROM recover_constraint('electrical_data', 'panels');

DO $$
BEGIN
    IF (SELECT count(*) FROM constraint_rollback_log WHERE status = 'PASS' AND operation = 'ROLLBACK') <> 2
       OR (SELECT count(*) FROM constraint_rollback_log WHERE status = 'NOT_VALID' AND operation = 'RECOVER') <> 2 THEN
        RAISE EXCEPTION 'incident simulation did not produce 2 rollbacks and 2 NOT VALID recoveries';
    END IF;
END
$$;

-- Put the incident at its real time and attribute it.
UPDATE constraint_rollback_log
SET performed_at = CASE operation WHEN 'ROLLBACK' THEN now() - interval '41 hours 5 minutes'
                                  ELSE now() - interval '36 hours 30 minutes' END
                   + (id % 10) * interval '20 seconds',
    performed_by = 'marc.dubois',
    message = message || ' [INC-2417: MES bulk synchronisation blocked by panel constraints]';

UPDATE rollback_test_results
SET tested_at = CASE test_type WHEN 'ROLLBACK' THEN now() - interval '41 hours 5 minutes'
                               ELSE now() - interval '36 hours 30 minutes' END
                + (id % 10) * interval '20 seconds',
    tested_by = 'marc.dubois',
    notes = notes || ' [INC-2417]';

-- ---------------------------------------------------------------------------
-- Counters, and the smaller planted faults
-- ---------------------------------------------------------------------------

UPDATE manufacturing_orders mo
SET completed_quantity = c.n,
    updated_at = now() - interval '30 minutes'
FROM (SELECT p.manufacturing_order_id AS mo_id, count(*) AS n
      FROM panels p WHERE p.status = 'COMPLETED' GROUP BY p.manufacturing_order_id) AS c
WHERE c.mo_id = mo.id AND mo.status <> 'COMPLETED';

-- 2 MOs whose completed_quantity drifted (double-counted / missed scan), 20 hours ago.
UPDATE manufacturing_orders mo
SET completed_quantity = mo.completed_quantity + CASE a.a WHEN 1 THEN 3 ELSE -1 END,
    updated_at = now() - interval '20 hours'
FROM (SELECT m.id, row_number() OVER (ORDER BY m.id) AS a
      FROM manufacturing_orders m WHERE m.status = 'ACTIVE') AS a
WHERE a.id = mo.id AND a.a IN (1, 2);

-- 3 pallets with 27 panels on them while panel_count says 25 (9 hours ago two
-- panels each were scanned onto a full pallet, bypassing the counter).
WITH targets AS (
    SELECT m.id AS mo_id, row_number() OVER (ORDER BY m.id) AS a
    FROM manufacturing_orders m WHERE m.status = 'ACTIVE'
), full_pallet AS (
    SELECT DISTINCT ON (pl.manufacturing_order_id) pl.manufacturing_order_id AS mo_id, pl.id
    FROM pallets pl JOIN targets t ON t.mo_id = pl.manufacturing_order_id
    WHERE pl.status = 'FULL' AND t.a <= 3
    ORDER BY pl.manufacturing_order_id, pl.pallet_number
), open_pallet AS (
    SELECT DISTINCT ON (pl.manufacturing_order_id) pl.manufacturing_order_id AS mo_id, pl.id
    FROM pallets pl JOIN targets t ON t.mo_id = pl.manufacturing_order_id
    WHERE pl.status = 'OPEN' AND t.a <= 3
    ORDER BY pl.manufacturing_order_id, pl.pallet_number DESC
), moved AS (
    SELECT p.id AS panel_id, f.id AS to_pallet
    FROM open_pallet o
    JOIN full_pallet f ON f.mo_id = o.mo_id
    CROSS JOIN LATERAL (SELECT p.id FROM panels p WHERE p.pallet_id = o.id ORDER BY p.id LIMIT 2) AS p
)
UPDATE panels p
SET pallet_id = m.to_pallet, updated_at = now() - interval '9 hours'
FROM moved m
WHERE p.id = m.panel_id;

UPDATE pallets pl
SET panel_count = c.n
FROM (SELECT pl2.id, count(p.id) AS n
      FROM pallets pl2 LEFT JOIN panels p ON p.pallet_id = pl2.id
      WHERE pl2.status = 'OPEN' GROUP BY pl2.id) AS c
WHERE c.id = pl.id;

-- 3 FAIL inspections recorded without a reason (station 3, last 30 hours).
WITH targets AS (
    SELECT p.id, p.line_assignment, row_number() OVER (ORDER BY p.id) AS r
    FROM panels p
    WHERE p.status = 'IN_PROGRESS' AND p.station_2_completed_at IS NOT NULL
      AND p.station_3_completed_at IS NULL AND p.created_by <> (SELECT id FROM users WHERE username = 'mes.integration')
)
INSERT INTO inspections (panel_id, station_id, inspector_id, result, notes, criteria, inspected_at)
SELECT t.id,
       (SELECT s.id FROM stations s WHERE s.line = t.line_assignment AND s.station_number = 3),
       (SELECT id FROM users WHERE username = 'jan.mertens'),
       'FAIL', CASE t.r WHEN 2 THEN '   ' END,
       '{"checklist": "JUNCTION_BOX", "items_checked": 9, "items_failed": 1}'::jsonb,
       now() - make_interval(hours => (40 - 11 * t.r)::integer)
FROM targets t
WHERE t.r <= 3;

-- ---------------------------------------------------------------------------
-- 95 days of monitoring history: hourly for 7 days, every 8 hours before.
-- (The check at load time is appended at the end by run_constraint_health_check().)
-- ---------------------------------------------------------------------------

WITH cfg AS (
    SELECT c.*, row_number() OVER (ORDER BY c.id) AS idx FROM constraint_monitoring_config c
), sizes AS (
    SELECT 'panels'::text AS tname, count(*) AS n FROM panels
    UNION ALL SELECT 'manufacturing_orders', count(*) FROM manufacturing_orders
    UNION ALL SELECT 'pallets', count(*) FROM pallets
    UNION ALL SELECT 'inspections', count(*) FROM inspections
    UNION ALL SELECT 'users', count(*) FROM users
    UNION ALL SELECT 'stations', count(*) FROM stations
), ticks AS (
    SELECT h AS age FROM generate_series(1, 168) AS h
    UNION ALL
    SELECT h FROM generate_series(176, 95 * 24, 8) AS h
), raw AS (
    SELECT cfg.constraint_name, cfg.table_name, cfg.idx, t.age,
           cfg.violation_threshold_critical AS tc, cfg.violation_threshold_warning AS tw,
           cfg.violation_threshold_attention AS ta,
           ((t.age * 37 + cfg.idx * 101) % 100) / 100.0 AS noise,
           CASE cfg.constraint_name
               WHEN 'panel_workflow_constraints' THEN
                   CASE WHEN t.age > 40 THEN CASE WHEN t.age BETWEEN 1440 AND 1490 THEN 8 ELSE 0 END
                        WHEN t.age >= 38 THEN round(140 * (41 - t.age) / 4.0)::integer
                        ELSE 140 END
               WHEN 'panel_electrical_constraints' THEN
                   CASE WHEN t.age > 40 THEN 0 WHEN t.age >= 39 THEN 6 ELSE 12 END
               WHEN 'mo_completion_constraints' THEN
                   CASE WHEN t.age <= 20 THEN 2 WHEN t.age <= 36 THEN 1
                        WHEN t.age BETWEEN 2000 AND 2050 THEN 1 ELSE 0 END
               WHEN 'pallet_capacity_constraints' THEN
                   CASE WHEN t.age <= 9 THEN 3 WHEN t.age <= 14 THEN 1
                        WHEN t.age BETWEEN 480 AND 500 THEN 1 ELSE 0 END
               WHEN 'inspection_result_constraints' THEN
                   CASE WHEN t.age <= 7 THEN 3 WHEN t.age <= 18 THEN 2 WHEN t.age <= 29 THEN 1
                        WHEN t.age % 97 = 0 THEN 1 ELSE 0 END
               WHEN 'panel_barcode_constraints' THEN
                   CASE WHEN t.age BETWEEN 960 AND 984 THEN 6 ELSE 0 END
               WHEN 'user_email_constraints' THEN
                   CASE WHEN t.age BETWEEN 1560 AND 1580 THEN 2 ELSE 0 END
               WHEN 'panel_station_progression_constraints' THEN
                   CASE WHEN t.age BETWEEN 240 AND 250 THEN 1 ELSE 0 END
               ELSE 0
           END AS violations,
           CASE WHEN cfg.constraint_name IN ('panel_workflow_constraints', 'panel_electrical_constraints')
                     AND t.age BETWEEN 37 AND 40 THEN 'MISSING'
                WHEN cfg.constraint_name IN ('panel_workflow_constraints', 'panel_electrical_constraints')
                     AND t.age <= 36 THEN 'NOT VALID'
                ELSE 'VALID' END AS cstate
    FROM cfg CROSS JOIN ticks t
), scored AS (
    SELECT r.*,
           constraint_health_status(r.violations, r.tc, r.tw, r.ta) AS status0,
           round(CASE r.constraint_name
               WHEN 'panel_workflow_constraints' THEN
                   CASE WHEN r.age <= 40 THEN 1150 + 350 * r.noise ELSE 40 + 20 * r.noise END
               WHEN 'panel_electrical_constraints' THEN
                   CASE WHEN r.age <= 40 THEN 560 + 260 * r.noise ELSE 25 + 10 * r.noise END
               WHEN 'panel_barcode_constraints' THEN 160 + 120 * r.noise
               WHEN 'pallet_capacity_constraints' THEN 55 + 40 * r.noise
               WHEN 'mo_completion_constraints' THEN 15 + 25 * r.noise
               WHEN 'inspection_result_constraints' THEN 8 + 10 * r.noise
               WHEN 'panel_station_progression_constraints' THEN 4 + 6 * r.noise
               WHEN 'panel_type_line_constraints' THEN 3 + 4 * r.noise
               WHEN 'user_email_constraints' THEN 2 + 3 * r.noise
               ELSE 1 + 2 * r.noise
           END, 2) AS perf
    FROM raw r
), final AS (
    SELECT s.*,
           CASE WHEN s.cstate = 'MISSING' AND s.status0 = 'HEALTHY' THEN 'ATTENTION' ELSE s.status0 END AS status
    FROM scored s
)
INSERT INTO constraint_monitoring_history
    (check_timestamp, constraint_name, table_name, violation_count, health_status, performance_avg_ms,
     performance_max_ms, rows_checked, constraint_state, alert_generated, check_source, notes)
SELECT now() - make_interval(hours => f.age) + make_interval(secs => f.idx * 2),
       f.constraint_name, f.table_name, f.violations, f.status, f.perf,
       round(f.perf * (1.3 + f.noise / 2), 2),
       sz.n,
       f.cstate,
       f.status IN ('WARNING', 'CRITICAL'),
       'scheduled',
       CASE WHEN f.violations = 0 THEN 'No violations'
            ELSE format('%s violating row(s)', f.violations) END
       || CASE WHEN f.cstate = 'MISSING' THEN '; constraint rolled back during INC-2417: rule not enforced'
               WHEN f.cstate = 'NOT VALID' THEN '; constraint re-created NOT VALID after INC-2417 (MES bulk sync rows)'
               ELSE '' END
FROM final f
JOIN sizes sz ON sz.tname = f.table_name
ORDER BY 1, f.idx;

-- ---------------------------------------------------------------------------
-- Rollback drills and tests (staging) before the incident
-- ---------------------------------------------------------------------------

INSERT INTO rollback_test_results (test_name, test_type, constraint_name, table_name, test_result,
                                   duration_ms, environment, notes, tested_by, tested_at)
SELECT t.test_name, t.test_type, r.constraint_name, r.table_name,
       CASE WHEN t.test_type = 'DRILL' AND r.constraint_name = 'station_progression' AND t.attempt = 1
            THEN 'FAIL' ELSE 'PASS' END,
       round(r.estimated_duration_ms * (0.7 + (r.id % 5) / 10.0), 2),
       t.env,
       CASE WHEN t.test_type = 'DRILL' AND r.constraint_name = 'station_progression' AND t.attempt = 1
            THEN 'lock_timeout: ALTER TABLE panels waited for a long-running report; retried'
            ELSE t.notes END,
       t.tested_by,
       now() - t.days_ago * interval '1 day' + r.id * interval '3 minutes' + t.attempt * interval '20 minutes'
FROM rollback_config r
CROSS JOIN (VALUES
    ('rollback script unit test', 'UNIT', 'ci', 'DROP and re-ADD on an empty schema', 'ci-runner', 62, 1),
    ('Quarterly rollback drill', 'DRILL', 'staging', 'Dropped on the staging copy; application kept working', 'lies.janssens', 24, 1),
    ('Quarterly rollback drill', 'DRILL', 'staging', 'Dropped on the staging copy; application kept working', 'lies.janssens', 24, 2),
    ('Quarterly recovery drill', 'RECOVERY', 'staging', 'Re-created and validated on the staging copy', 'lies.janssens', 24, 3)
) AS t(test_name, test_type, env, notes, tested_by, days_ago, attempt)
WHERE t.attempt <> 2 OR r.constraint_name = 'station_progression'
ORDER BY 10;

-- ---------------------------------------------------------------------------
-- The check at load time: one row per monitored constraint, right now.
-- ---------------------------------------------------------------------------

SELECT count(*) AS constraints_checked FROM run_constraint_health_check();
