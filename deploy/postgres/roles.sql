-- The suite's roles on one PostgreSQL database: a migration role that owns every schema and
-- is the only one that changes them, and one role per service with rights on its own
-- schema's rows only (no DDL, no other service's data). Idempotent: run it as a superuser
-- (or a role with CREATEROLE that may grant to antifraud_migrate) before the first
-- migration and again after adding a service; then give each role its password:
--
--   psql "$SUPERUSER_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/roles.sql
--   psql "$SUPERUSER_URL" -c "ALTER ROLE antifraud_risk PASSWORD '...'"      -- and so on
--
-- Kubernetes: the migration Job connects as antifraud_migrate (Secret
-- antifraud-database-migrate), each service as its own role (antifraud-database-<name>).
-- Schema and role names are the services' defaults (ANTIFRAUD_<NAME>_DB_SCHEMA).
DO $roles$
DECLARE
  service text;
  name text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'antifraud_migrate') THEN
    CREATE ROLE antifraud_migrate LOGIN;
  END IF;
  -- Only the migration role creates objects (PUBLIC's CREATE on public is gone by
  -- default since PostgreSQL 15; revoked here for older clusters).
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  FOREACH service IN ARRAY ARRAY['risk', 'report', 'warning', 'identity', 'gateway'] LOOP
    name := 'antifraud_' || service;  -- the service's role and its schema
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', name);
    END IF;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION antifraud_migrate', name);
    EXECUTE format('ALTER SCHEMA %I OWNER TO antifraud_migrate', name);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', name);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', name, name);
    -- Rows of the tables and sequences the migrations make from now on...
    EXECUTE format(
      'ALTER DEFAULT PRIVILEGES FOR ROLE antifraud_migrate IN SCHEMA %I '
      'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', name, name);
    EXECUTE format(
      'ALTER DEFAULT PRIVILEGES FOR ROLE antifraud_migrate IN SCHEMA %I '
      'GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', name, name);
    -- ...and of those already there (a deployment that ran on one role before).
    EXECUTE format(
      'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', name, name);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', name, name);
  END LOOP;
END
$roles$;
