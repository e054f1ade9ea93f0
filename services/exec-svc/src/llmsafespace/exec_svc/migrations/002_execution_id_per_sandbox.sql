-- Execution ids are unique within a sandbox only (clients choose them).
ALTER TABLE executions DROP CONSTRAINT executions_pkey;
ALTER TABLE executions ADD PRIMARY KEY (sandbox_id, id);
