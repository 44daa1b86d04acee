-- 00_common.sql - objects shared by the three demo domains.
--
-- The demo database is loaded file by file in lexical order into an EMPTY
-- database (each file is one simple-protocol query string, so each file runs
-- as one implicit transaction and now() is constant inside a file).
-- Plain SQL only: no psql meta-commands. Works on PostgreSQL 13 to 18.

-- When and what was loaded: every planted fault is placed relative to the
-- load time, so playbooks can tell how stale the demo is.
CREATE TABLE demo_metadata (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO demo_metadata (key, value) VALUES
    ('demo_version', '1'),
    ('load_started_at', now()::text),
    ('domains', 'solar panel production (constraint monitoring, emergency rollback); '
             || 'festival cashless payments monitoring; historical market data'),
    ('note', 'Timestamps are relative to the load time; reload the demo to make the planted faults recent again.');

-- pg_stat_statements, for the slow-query checks of the festival and market
-- data playbooks (issue 16, item 10). The embedded server preloads it
-- (shared_preload_libraries); a server without the contrib module, or a role
-- that may not create it, goes on without it, and those checks say why they
-- are skipped.
DO $pgss$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_stat_statements not installed: % (the slow-query checks will be skipped)', SQLERRM;
END
$pgss$;

-- Ordered severities: ORDER BY severity DESC puts CRITICAL first, and
-- MAX(severity) is the worst one (the manuals rely on both).
-- Values compare equal to plain string literals ('CRITICAL') and to text
-- parameters sent as unknown (psycopg's default).
CREATE TYPE constraint_severity AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
COMMENT ON TYPE constraint_severity IS
    'Severity of a constraint violation: LOW < MEDIUM < HIGH < CRITICAL (solar constraint monitoring).';

CREATE TYPE risk_level AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
COMMENT ON TYPE risk_level IS
    'Risk of rolling back / recovering a constraint: LOW < MEDIUM < HIGH < CRITICAL.';

CREATE TYPE event_severity AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
COMMENT ON TYPE event_severity IS
    'Severity of a festival monitoring event: LOW < MEDIUM < HIGH < CRITICAL.';
