-- A signpost is the practice's own record: no community group sees it. Signposts were
-- stored with the group that runs the service, which let the group read them; that link
-- is removed, and the triggers keep it from coming back (as PostgreSQL's CHECK does).
UPDATE referrals SET group_id = NULL WHERE kind = 'signpost';
CREATE TRIGGER signposts_have_no_group_on_insert BEFORE INSERT ON referrals
WHEN NEW.kind = 'signpost' AND NEW.group_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a signpost is shared with no group');
END;
CREATE TRIGGER signposts_have_no_group_on_update BEFORE UPDATE OF kind, group_id ON referrals
WHEN NEW.kind = 'signpost' AND NEW.group_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a signpost is shared with no group');
END;
