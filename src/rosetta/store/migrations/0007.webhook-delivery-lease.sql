-- depends: 0005.webhooks-and-metrics
-- A delivery being sent is leased, not locked: a dispatcher marks it as its own until
-- locked_until and commits before it sends, so no transaction stays open while an endpoint
-- answers (or does not). A dispatcher that dies leaves the lease to expire, and the delivery is
-- sent again (at least once). locked_by names the claim, so a late result of an expired lease
-- never overwrites a newer one.

ALTER TABLE webhook_deliveries
    ADD COLUMN locked_until TIMESTAMPTZ,
    ADD COLUMN locked_by TEXT;

-- An endpoint's deliveries in the order they are sent, and whether one is being sent.
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint_id, next_attempt_at, id)
    WHERE status = 'pending';
