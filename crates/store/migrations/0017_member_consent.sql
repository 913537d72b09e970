-- Invitations the person accepts: a membership counts (the dashboard lets its
-- member in) only once `accepted_at` is set, by following the invitation's link:
-- a new account by choosing its password there, an existing one by joining from
-- its own session. Memberships made before this were in at once, so they count.
ALTER TABLE workspace_members ADD COLUMN accepted_at BIGINT;
UPDATE workspace_members SET accepted_at = created_at;
