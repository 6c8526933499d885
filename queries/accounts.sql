-- name: CreateAccount :one
INSERT INTO accounts (email, display_name)
VALUES ($1, $2)
RETURNING id, email, display_name, created_at;

-- name: GetAccountByEmail :one
SELECT id, email, display_name, created_at
FROM accounts
WHERE email = $1;
