-- Which factors began a session, so a role that needs two factors, granted while the
-- session is open, asks for the second then. Sessions open at the upgrade were begun
-- under the rules of their time, which already asked for the factors their roles needed.
ALTER TABLE sessions ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 1 CHECK (second_factor IN (0, 1));
