-- Which factors began a session, so a role that needs two factors, granted while the
-- session is open, asks for the second then. As in SQLite's migration 11.
ALTER TABLE sessions ADD COLUMN second_factor boolean NOT NULL DEFAULT true;
