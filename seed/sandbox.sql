-- Seed data for sandboxes: a small, realistic data set that agents and people can query.
-- Idempotent: every insert skips rows that are already there, so re-running the seed Job is safe.
INSERT INTO accounts (email, display_name) VALUES
  ('ada@example.com', 'Ada Lovelace'),
  ('grace@example.com', 'Grace Hopper'),
  ('edsger@example.com', 'Edsger Dijkstra')
ON CONFLICT (email) DO NOTHING;

INSERT INTO projects (account_id, name)
SELECT a.id, p.name
FROM (VALUES ('ada@example.com', 'analytical-engine'),
             ('grace@example.com', 'compiler'),
             ('grace@example.com', 'cobol')) AS p(email, name)
JOIN accounts a ON a.email = p.email
ON CONFLICT (account_id, name) DO NOTHING;

INSERT INTO tasks (project_id, title, status, priority, assignee_id, due_at)
SELECT pr.id, t.title, t.status, t.priority, asg.id, now() + t.due
FROM (VALUES ('analytical-engine', 'Write the first program', 'doing', 1, 'ada@example.com', interval '7 days'),
             ('analytical-engine', 'Describe the Bernoulli numbers', 'todo', 2, 'ada@example.com', interval '14 days'),
             ('compiler', 'Find the moth', 'done', 3, 'grace@example.com', interval '-1 day'),
             ('cobol', 'Draft the specification', 'todo', 2, 'edsger@example.com', NULL)) AS t(project, title, status, priority, assignee, due)
JOIN projects pr ON pr.name = t.project
LEFT JOIN accounts asg ON asg.email = t.assignee
WHERE NOT EXISTS (SELECT 1 FROM tasks x WHERE x.project_id = pr.id AND x.title = t.title);
