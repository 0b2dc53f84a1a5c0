-- The pool member a user is homed on (its FQDN), assigned when the user is created and changed
-- with `herald user move`. NULL: the member the pool's hash of the address picks.
ALTER TABLE users ADD COLUMN home TEXT;
