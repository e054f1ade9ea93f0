"""The public HTTP API: authenticates, validates, and turns each request into one bus command."""
