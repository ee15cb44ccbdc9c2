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
        WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.attempts > 0) AS retrying,
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

-- name: source_webhook_severity
-- Which severities of change the source sends webhooks for: 'all' or 'breaking'.
SELECT webhook_severity FROM sources WHERE id = %(source_id)s

-- name: insert_event
INSERT INTO webhook_events (source_id, event_type, payload)
VALUES (%(source_id)s, %(event_type)s, %(payload)s)
RETURNING id

-- name: insert_delivery
INSERT INTO webhook_deliveries (endpoint_id, event_id) VALUES (%(endpoint_id)s, %(event_id)s)
RETURNING id

-- name: claim_due
-- Lease the next due delivery of up to %(limit)s endpoints, oldest first, and commit before
-- sending: no transaction stays open while an endpoint answers. An endpoint with a delivery under
-- lease is busy, so one endpoint gets one delivery at a time, in order. The conditions on d are
-- repeated where the rows are locked because a row another dispatcher leased meanwhile is
-- re-checked there (READ COMMITTED), never in the CTEs above: that is what keeps two dispatchers
-- from sending the same delivery at once.
WITH busy AS (
    SELECT DISTINCT endpoint_id FROM webhook_deliveries
    WHERE status = 'pending' AND locked_until > now()
), heads AS (
    SELECT DISTINCT ON (d.endpoint_id) d.id
    FROM webhook_deliveries d
    WHERE d.status = 'pending'
      AND d.next_attempt_at <= now()
      AND d.endpoint_id NOT IN (SELECT endpoint_id FROM busy)
    ORDER BY d.endpoint_id, d.next_attempt_at, d.id
), picked AS (
    SELECT d.id
    FROM webhook_deliveries d
    WHERE d.id IN (SELECT id FROM heads)
      AND d.status = 'pending'
      AND d.next_attempt_at <= now()
      AND (d.locked_until IS NULL OR d.locked_until <= now())
    ORDER BY d.next_attempt_at, d.id
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET locked_until = now() + make_interval(secs => %(lease_seconds)s), locked_by = %(lease)s,
    updated_at = now()
FROM picked, webhook_endpoints e, webhook_events ev
WHERE d.id = picked.id AND e.id = d.endpoint_id AND ev.id = d.event_id
RETURNING d.id, d.endpoint_id, d.attempts, d.locked_by AS lease, e.url, e.secret_encrypted,
          ev.event_type, ev.payload

-- name: delivery_result
-- Only the claim that holds the lease records its result: when a lease ran out and another
-- dispatcher claimed the delivery again, the late result is dropped (that one records its own).
UPDATE webhook_deliveries
SET status = %(status)s, attempts = attempts + 1, last_status_code = %(status_code)s,
    last_error = %(error)s, next_attempt_at = now() + make_interval(secs => %(delay)s),
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
    locked_until = NULL, locked_by = NULL, updated_at = now()
WHERE id = %(id)s AND locked_by = %(lease)s

-- name: lease_left
-- Seconds until the first lease of a delivery still pending runs out (NULL: none is leased).
SELECT extract(epoch FROM min(locked_until) - now())::float8
FROM webhook_deliveries
WHERE status = 'pending' AND locked_until > now()

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
