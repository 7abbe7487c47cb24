-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- POSTGRES_DB made `ndxp` (the NDXP replicas' NPD, civil registry and audit); the VNeID gets its own.
CREATE DATABASE vneid OWNER popsync;
