#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d), as the superuser.
# The hub connects as `hub`: it owns its own database and schema (its migrations create and alter tables
# there) and nothing else: not a superuser, cannot create roles or databases, cannot read other databases.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set=password="$ROLE_PASSWORD_HUB" <<'SQL'
CREATE ROLE hub LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
CREATE DATABASE hub OWNER hub;
REVOKE ALL ON DATABASE hub FROM PUBLIC;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname hub <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO hub;
SQL
