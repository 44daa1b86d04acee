-- 12_solar_views.sql - the monitoring dashboard views of the constraint manual.
--
-- Labels carry the real emoji ('🟢 HEALTHY', '🟠 ATTENTION', '🟡 WARNING',
-- '🔴 CRITICAL'; '🔴 HIGH IMPACT', '🟡 MEDIUM IMPACT', '🟠 LOW IMPACT',
-- '🟢 MINIMAL IMPACT'); the seed manuals show them as mojibake.
-- The *_trends views cover the last 7 days of constraint_monitoring_history,
-- constraint_performance_summary the last 24 hours.

-- One row per monitored constraint: its latest check, plus the last 24 hours.
CREATE VIEW constraint_health_overview AS
WITH latest AS (
    SELECT DISTINCT ON (h.constraint_name, h.table_name) h.*
    FROM constraint_monitoring_history h
    ORDER BY h.constraint_name, h.table_name, h.check_timestamp DESC, h.id DESC
), last24 AS (
    SELECT h.constraint_name, h.table_name,
           count(*) AS checks_24h,
           count(*) FILTER (WHERE h.health_status = 'CRITICAL') AS critical_checks_24h,
           count(*) FILTER (WHERE h.health_status = 'WARNING') AS warning_checks_24h,
           count(*) FILTER (WHERE h.alert_generated) AS alerts_24h,
           max(h.violation_count) AS max_violations_24h,
           round(avg(h.performance_avg_ms), 2) AS avg_performance_ms_24h
    FROM constraint_monitoring_history h
    WHERE h.check_timestamp >= now() - interval '24 hours'
    GROUP BY h.constraint_name, h.table_name
)
SELECT c.constraint_name,
       c.table_name,
       c.pg_constraint_name,
       c.rollback_name,
       constraint_state(c.table_name, c.pg_constraint_name) AS constraint_state,
       coalesce(l.health_status, 'UNKNOWN') AS health_status,
       constraint_health_label(l.health_status) AS overall_status,
       l.violation_count,
       l.check_timestamp AS last_check_timestamp,
       round(extract(epoch FROM now() - l.check_timestamp)::numeric / 60, 1) AS minutes_since_check,
       l.performance_avg_ms AS last_performance_ms,
       coalesce(d.checks_24h, 0) AS checks_24h,
       coalesce(d.critical_checks_24h, 0) AS critical_checks_24h,
       coalesce(d.warning_checks_24h, 0) AS warning_checks_24h,
       coalesce(d.alerts_24h, 0) AS alerts_24h,
       d.max_violations_24h,
       d.avg_performance_ms_24h,
       c.violation_threshold_critical,
       c.violation_threshold_warning,
       c.violation_threshold_attention,
       l.notes AS last_notes
FROM constraint_monitoring_config c
LEFT JOIN latest l ON l.constraint_name = c.constraint_name AND l.table_name = c.table_name
LEFT JOIN last24 d ON d.constraint_name = c.constraint_name AND d.table_name = c.table_name
WHERE c.is_active
ORDER BY CASE l.health_status WHEN 'CRITICAL' THEN 1 WHEN 'WARNING' THEN 2
                              WHEN 'ATTENTION' THEN 3 WHEN 'HEALTHY' THEN 4 ELSE 5 END,
         c.table_name, c.constraint_name;
COMMENT ON VIEW constraint_health_overview IS
    'Latest health of every monitored constraint; overall_status is one of 🟢 HEALTHY, 🟠 ATTENTION, 🟡 WARNING, 🔴 CRITICAL.';

-- Hourly violation counts per constraint over the last 7 days, with direction.
CREATE VIEW constraint_violation_trends AS
WITH hourly AS (
    SELECT date_trunc('hour', h.check_timestamp) AS hour_bucket,
           h.constraint_name,
           h.table_name,
           count(*) AS check_count,
           sum(h.violation_count) AS total_violations,
           max(h.violation_count) AS max_violations,
           round(avg(h.violation_count), 1) AS avg_violations,
           max(CASE h.health_status WHEN 'CRITICAL' THEN 4 WHEN 'WARNING' THEN 3
                                    WHEN 'ATTENTION' THEN 2 ELSE 1 END) AS worst_rank,
           count(*) FILTER (WHERE h.alert_generated) AS alerts_generated
    FROM constraint_monitoring_history h
    WHERE h.check_timestamp >= now() - interval '7 days'
    GROUP BY 1, 2, 3
)
SELECT hour_bucket,
       constraint_name,
       table_name,
       check_count,
       total_violations,
       max_violations,
       avg_violations,
       CASE worst_rank WHEN 4 THEN 'CRITICAL' WHEN 3 THEN 'WARNING'
                       WHEN 2 THEN 'ATTENTION' ELSE 'HEALTHY' END AS worst_status,
       alerts_generated,
       max_violations - lag(max_violations) OVER w AS violation_change,
       CASE WHEN lag(max_violations) OVER w IS NULL THEN 'NEW'
            WHEN max_violations > lag(max_violations) OVER w THEN 'INCREASING'
            WHEN max_violations < lag(max_violations) OVER w THEN 'DECREASING'
            ELSE 'STABLE' END AS trend_direction
FROM hourly
WINDOW w AS (PARTITION BY constraint_name, table_name ORDER BY hour_bucket)
ORDER BY hour_bucket DESC, constraint_name;
COMMENT ON VIEW constraint_violation_trends IS
    'Per hour and constraint over the last 7 days: violations, worst status, alerts and trend_direction (NEW/INCREASING/DECREASING/STABLE).';

-- Check-time statistics per constraint over the last 24 hours.
CREATE VIEW constraint_performance_summary AS
SELECT h.constraint_name,
       h.table_name,
       count(*) AS check_count,
       round(avg(h.performance_avg_ms), 2) AS avg_performance_ms,
       round(max(coalesce(h.performance_max_ms, h.performance_avg_ms)), 2) AS max_performance_ms,
       round(min(h.performance_avg_ms), 2) AS min_performance_ms,
       round((percentile_cont(0.95) WITHIN GROUP (ORDER BY h.performance_avg_ms))::numeric, 2)
           AS p95_performance_ms,
       count(*) FILTER (WHERE h.performance_avg_ms > 500) AS slow_checks,
       constraint_performance_impact(avg(h.performance_avg_ms)) AS performance_impact,
       max(h.check_timestamp) AS last_check_timestamp
FROM constraint_monitoring_history h
WHERE h.check_timestamp >= now() - interval '24 hours'
GROUP BY h.constraint_name, h.table_name
ORDER BY avg(h.performance_avg_ms) DESC NULLS LAST;
COMMENT ON VIEW constraint_performance_summary IS
    'Last 24 hours per constraint; performance_impact: 🔴 HIGH IMPACT (> 1000 ms), 🟡 MEDIUM IMPACT (500-1000), 🟠 LOW IMPACT (100-500), 🟢 MINIMAL IMPACT (< 100).';

-- Hourly check times per constraint over the last 7 days.
CREATE VIEW constraint_performance_trends AS
WITH hourly AS (
    SELECT date_trunc('hour', h.check_timestamp) AS hour_bucket,
           h.constraint_name,
           h.table_name,
           count(*) AS check_count,
           avg(h.performance_avg_ms) AS avg_ms,
           max(coalesce(h.performance_max_ms, h.performance_avg_ms)) AS max_ms
    FROM constraint_monitoring_history h
    WHERE h.check_timestamp >= now() - interval '7 days'
    GROUP BY 1, 2, 3
)
SELECT hour_bucket,
       constraint_name,
       table_name,
       check_count,
       round(avg_ms, 2) AS avg_performance_ms,
       round(max_ms, 2) AS max_performance_ms,
       constraint_performance_impact(avg_ms) AS performance_impact,
       round(avg_ms - lag(avg_ms) OVER w, 2) AS change_ms,
       CASE WHEN lag(avg_ms) OVER w IS NULL OR lag(avg_ms) OVER w = 0 THEN NULL
            ELSE round(100 * (avg_ms - lag(avg_ms) OVER w) / lag(avg_ms) OVER w, 1) END AS change_percent
FROM hourly
WINDOW w AS (PARTITION BY constraint_name, table_name ORDER BY hour_bucket)
ORDER BY hour_bucket DESC, constraint_name;
COMMENT ON VIEW constraint_performance_trends IS
    'Per hour and constraint over the last 7 days: average and maximum check time, impact label, change vs the previous hour.';

-- Where every rollback-managed constraint stands right now.
CREATE VIEW constraint_rollback_status AS
SELECT r.constraint_name,
       r.table_name,
       r.pg_constraint_name,
       r.rollback_priority,
       r.risk_level,
       constraint_state(r.table_name, r.pg_constraint_name) AS constraint_state,
       constraint_state(r.table_name, r.pg_constraint_name) <> 'MISSING' AS is_present,
       lr.performed_at AS last_rollback_at,
       lr.status AS last_rollback_status,
       lv.performed_at AS last_recovery_at,
       lv.status AS last_recovery_status,
       r.monitoring_name
FROM rollback_config r
LEFT JOIN LATERAL (
    SELECT l.performed_at, l.status FROM constraint_rollback_log l
    WHERE l.table_name = r.table_name AND l.pg_constraint_name = r.pg_constraint_name
      AND l.operation = 'ROLLBACK'
    ORDER BY l.performed_at DESC, l.id DESC LIMIT 1
) lr ON true
LEFT JOIN LATERAL (
    SELECT l.performed_at, l.status FROM constraint_rollback_log l
    WHERE l.table_name = r.table_name AND l.pg_constraint_name = r.pg_constraint_name
      AND l.operation = 'RECOVER'
    ORDER BY l.performed_at DESC, l.id DESC LIMIT 1
) lv ON true
ORDER BY r.rollback_priority, r.risk_level DESC, r.id;
COMMENT ON VIEW constraint_rollback_status IS
    'Each rollback_config constraint: VALID / NOT VALID / MISSING (rolled back) now, with its last rollback and recovery.';
