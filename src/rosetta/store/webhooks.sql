-- name: insert_endpoint
INSERT INTO webhook_endpoints (source_id, url, secret_encrypted, events)
VALUES (%(source_id)s, %(url)s, %(secret_encrypted)s, %(events)s)
RETURNING id, source_id, url, events, enabled, created_at, secret_encrypted IS NOT NULL AS signed

-- name: list_endpoints
SELECT e.id, e.source_id, s.name AS source, e.url, e.events, e.enabled, e.created_at,
       e.secret_encrypted IS NOT NULL AS signed,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.status = 'delivered') AS delivered,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed
FROM webhook_endpoints e
JOIN sources s ON s.id = e.source_id
WHERE %(source_id)s::bigint IS NULL OR e.source_id = %(source_id)s
ORDER BY s.name, e.id

-- name: endpoint_by_id
SELECT e.*, s.name AS source FROM webhook_endpoints e JOIN sources s ON s.id = e.source_id
WHERE e.id = %(id)s

-- name: delete_endpoint
DELETE FROM webhook_endpoints WHERE id = %(id)s

-- name: endpoints_for_source
SELECT id, events FROM webhook_endpoints WHERE source_id = %(source_id)s AND enabled

-- name: insert_event
INSERT INTO webhook_events (source_id, event_type, payload)
VALUES (%(source_id)s, %(event_type)s, %(payload)s)
RETURNING id

-- name: insert_delivery
INSERT INTO webhook_deliveries (endpoint_id, event_id) VALUES (%(endpoint_id)s, %(event_id)s)
RETURNING id

-- name: claim_due
-- Due deliveries, each claimed by one dispatcher: other processes skip the locked rows.
SELECT d.id, d.attempts, e.url, e.secret_encrypted, ev.event_type, ev.payload, ev.id AS event_id
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.status = 'pending' AND d.next_attempt_at <= now()
ORDER BY d.next_attempt_at, d.id
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED

-- name: delivery_result
UPDATE webhook_deliveries
SET status = %(status)s, attempts = attempts + 1, last_status_code = %(status_code)s,
    last_error = %(error)s, next_attempt_at = now() + make_interval(secs => %(delay)s),
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END, updated_at = now()
WHERE id = %(id)s

-- name: list_deliveries
SELECT d.id, d.endpoint_id, e.url, ev.event_type, ev.payload -> 'table' ->> 'qualified' AS tbl,
       ev.payload ->> 'version' AS version, d.status, d.attempts, d.last_status_code,
       d.last_error, d.next_attempt_at, d.delivered_at, d.created_at
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN webhook_events ev ON ev.id = d.event_id
WHERE (%(source_id)s::bigint IS NULL OR e.source_id = %(source_id)s)
  AND (%(endpoint_id)s::bigint IS NULL OR d.endpoint_id = %(endpoint_id)s)
ORDER BY d.id DESC
LIMIT %(limit)s
