-- A signpost is the practice's own record: no community group sees it. Signposts were
-- stored with the group that runs the service, which let the group read them; that link
-- is removed, and the CHECK keeps it from coming back (as SQLite's triggers do).
UPDATE referrals SET group_id = NULL WHERE kind = 'signpost';
ALTER TABLE referrals ADD CONSTRAINT signposts_have_no_group CHECK (kind = 'referral' OR group_id IS NULL);
