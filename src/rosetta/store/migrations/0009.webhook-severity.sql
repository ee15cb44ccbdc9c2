-- depends: 0008.row-filters
-- Which severities of change send webhooks, per source: 'all' (every event, as until now) or
-- 'breaking' (only events that may break a consumer; see rosetta.schema.severity).

ALTER TABLE sources
    ADD COLUMN webhook_severity TEXT NOT NULL DEFAULT 'all'
        CONSTRAINT sources_webhook_severity_check CHECK (webhook_severity IN ('all', 'breaking'));
