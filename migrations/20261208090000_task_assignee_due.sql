-- Modify "tasks" table
ALTER TABLE "tasks" ADD COLUMN "assignee_id" bigint NULL, ADD COLUMN "due_at" timestamptz NULL, ADD CONSTRAINT "tasks_assignee_id_fkey" FOREIGN KEY ("assignee_id") REFERENCES "accounts" ("id") ON UPDATE NO ACTION ON DELETE SET NULL;
-- Create index "tasks_assignee_id_idx" to table: "tasks"
CREATE INDEX "tasks_assignee_id_idx" ON "tasks" ("assignee_id");
-- Create index "tasks_open_due_at_idx" to table: "tasks"
CREATE INDEX "tasks_open_due_at_idx" ON "tasks" ("due_at") WHERE (status <> 'done'::text);
