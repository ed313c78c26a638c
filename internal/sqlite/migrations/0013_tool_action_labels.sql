-- The flow labels of single actions of a tool (issue 16), by action: a JSON object of action →
-- {output, data, effect}; null when no action is labelled. They override the whole tool's flow
-- labels, which stay in tools.labels.
ALTER TABLE tools ADD COLUMN action_labels TEXT NOT NULL DEFAULT 'null';
