"""exec-svc: runs code and commands inside running sandboxes."""
