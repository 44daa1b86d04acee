-- 90_finalize.sql - statistics for the planner and for the manuals' catalog
-- queries (pg_stats, pg_stat_user_indexes), and the load summary.
-- (VACUUM cannot run here: each file runs as one implicit transaction.)

-- JIT compilation (on by default where LLVM is installed) would make this
-- bulk load several times slower; the setting ends with this file's transaction.
SET LOCAL jit = off;

ANALYZE;

-- A few index lookups like the applications make, so that the index usage
-- statistics are not all zero (sequential scans disabled for this transaction only).
SET LOCAL enable_seqscan = off;
SELECT count(*) FROM ohlcv_data WHERE instrument_id = 4916 AND ts_event >= now() - interval '30 days';
SELECT count(*) FROM ohlcv_data WHERE symbol = 'NQ' AND ts_event >= now() - interval '7 days';
SELECT count(*) FROM ohlcv_data WHERE ts_event >= now() - interval '2 days';
SELECT count(*) FROM trades_data WHERE ts_event >= now() - interval '1 day';
SELECT count(*) FROM trades_data t JOIN definitions_data d ON d.instrument_id = t.instrument_id
WHERE t.instrument_id = (SELECT min(instrument_id) FROM definitions_data WHERE asset = 'ES')
  AND t.ts_event >= now() - interval '2 days';
SELECT count(*) FROM tbbo_data WHERE ts_event >= now() - interval '6 hours';
SELECT count(*) FROM statistics_data WHERE instrument_id = 4916 AND ts_event >= now() - interval '10 days';
SELECT count(*) FROM monitoring_events WHERE detection_timestamp > now() - interval '1 hour';
SELECT count(*) FROM monitoring_events WHERE event_type = 'transaction_failure' AND status = 'OPEN';
SELECT count(*) FROM app_transaction_log WHERE card_id = 'CARD-0202';
SELECT count(*) FROM system_health_snapshots WHERE snapshot_timestamp > now() - interval '1 hour';
SELECT count(*) FROM constraint_monitoring_history WHERE check_timestamp >= now() - interval '1 day';
SELECT count(*) FROM panels WHERE status = 'PENDING';
RESET enable_seqscan;

INSERT INTO demo_metadata (key, value)
SELECT 'load_completed_at', now()::text
UNION ALL SELECT 'server_version', current_setting('server_version')
UNION ALL SELECT 'timezone_at_load', current_setting('TimeZone')
UNION ALL SELECT 'row_counts',
       (SELECT string_agg(format('%s=%s', c.relname, c.reltuples::bigint), ', ' ORDER BY c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm'));
