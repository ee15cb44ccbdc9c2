-- name: table_events
-- A table's removals, returns and heals (written by the trigger of migration 0010), oldest first.
SELECT event, created_at
FROM table_events
WHERE table_metadata_list_id = %(table_id)s
ORDER BY created_at, id
