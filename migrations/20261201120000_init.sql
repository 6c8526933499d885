-- Create "accounts" table
CREATE TABLE "accounts" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "email" text NOT NULL,
  "display_name" text NOT NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id"),
  CONSTRAINT "accounts_email_key" UNIQUE ("email")
);
-- Create "projects" table
CREATE TABLE "projects" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "account_id" bigint NOT NULL,
  "name" text NOT NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id"),
  CONSTRAINT "projects_account_id_name_key" UNIQUE ("account_id", "name"),
  CONSTRAINT "projects_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts" ("id") ON UPDATE NO ACTION ON DELETE CASCADE
);
-- Create "tasks" table
CREATE TABLE "tasks" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "project_id" bigint NOT NULL,
  "title" text NOT NULL,
  "status" text NOT NULL DEFAULT 'todo',
  "priority" smallint NOT NULL DEFAULT 3,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id"),
  CONSTRAINT "tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON UPDATE NO ACTION ON DELETE CASCADE,
  CONSTRAINT "tasks_status_check" CHECK (status = ANY (ARRAY['todo'::text, 'doing'::text, 'done'::text])),
  CONSTRAINT "tasks_priority_check" CHECK ((priority >= 1) AND (priority <= 5))
);
-- Create index "tasks_project_id_status_idx" to table: "tasks"
CREATE INDEX "tasks_project_id_status_idx" ON "tasks" ("project_id", "status");
