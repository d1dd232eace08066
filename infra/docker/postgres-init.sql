-- Run once by the postgres image when its volume is first initialised (docker-compose.yml mounts
-- it into /docker-entrypoint-initdb.d; psql runs it as the superuser). The app gets a role of
-- its own that may log in and owns the rectrack database, so it can create, rename and drop its
-- schemas (migrations, replay, verify), but it is no superuser and can create neither roles nor
-- databases. The password comes from the container's environment, never from this file.
\set ON_ERROR_STOP on
\getenv app_password RECTRACK_APP_DB_PASSWORD
CREATE ROLE rectrack_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';
CREATE DATABASE rectrack OWNER rectrack_app ENCODING 'UTF8';
-- PUBLIC may connect to every database by default; the app needs only its own.
REVOKE ALL ON DATABASE rectrack FROM PUBLIC;
REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC;
