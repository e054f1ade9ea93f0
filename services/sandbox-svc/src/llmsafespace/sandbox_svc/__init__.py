"""sandbox-svc: owns the sandbox lifecycle and the sandboxes table."""
