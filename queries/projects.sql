-- name: CreateProject :one
INSERT INTO projects (account_id, name)
VALUES ($1, $2)
RETURNING id, account_id, name, created_at;

-- name: ListProjectsByAccount :many
SELECT id, account_id, name, created_at
FROM projects
WHERE account_id = $1
ORDER BY name;
