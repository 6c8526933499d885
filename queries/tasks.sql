-- name: CreateTask :one
INSERT INTO tasks (project_id, title, priority, assignee_id, due_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetTask :one
SELECT * FROM tasks
WHERE id = $1;

-- name: ListOpenTasksDueBefore :many
-- Served by tasks_open_due_at_idx: the partial index covers exactly the open tasks.
SELECT t.id, t.title, t.status, t.priority, t.due_at, p.name AS project_name
FROM tasks t
JOIN projects p ON p.id = t.project_id
WHERE t.status <> 'done' AND t.due_at < $1
ORDER BY t.due_at
LIMIT $2;

-- name: CountTasksByStatus :many
SELECT status, count(*) AS task_count
FROM tasks
WHERE project_id = $1
GROUP BY status
ORDER BY status;

-- name: UpdateTaskStatus :execrows
UPDATE tasks SET status = $2
WHERE id = $1;

-- name: DeleteDoneTasks :exec
DELETE FROM tasks
WHERE project_id = $1 AND status = 'done';
