-- depends: 0007.webhook-delivery-lease
-- The row filter (WHERE clause) the publication applies to each table, PostgreSQL 15+; NULL
-- when it has none. A change of it is reported as the webhook event table.row_filter_changed,
-- which endpoints that took every event until now take too.

ALTER TABLE table_metadata_list ADD COLUMN row_filter TEXT;

ALTER TABLE webhook_endpoints
    ALTER COLUMN events SET DEFAULT ARRAY['schema.changed', 'table.added', 'table.removed',
                                          'table.healed', 'table.row_filter_changed'];

UPDATE webhook_endpoints
SET events = events || ARRAY['table.row_filter_changed']
WHERE events @> ARRAY['schema.changed', 'table.added', 'table.removed', 'table.healed']
  AND NOT events @> ARRAY['table.row_filter_changed'];
