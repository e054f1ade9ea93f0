"""audit-svc: records every event on `llmsafespace.evt.>` in `audit_events`, exactly once."""
