-- Sources, the tables their publications carry, and the history of each table's schema.

CREATE TABLE sources (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 5432,
    database TEXT NOT NULL,
    username TEXT NOT NULL,
    password_encrypted TEXT,
    connect_options JSONB NOT NULL DEFAULT '{}',
    publication_name TEXT NOT NULL,
    replication_name TEXT,
    is_publication_enabled BOOLEAN NOT NULL DEFAULT false,
    is_replication_enabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sync_at TIMESTAMPTZ,
    last_sync_status TEXT,
    last_sync_error TEXT,
    CONSTRAINT sources_last_sync_status_check
        CHECK (last_sync_status IN ('ok', 'partial', 'failed', 'publication_missing'))
);

CREATE TABLE table_metadata_list (
    id BIGSERIAL PRIMARY KEY,
    source_id BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    schema_name TEXT NOT NULL DEFAULT 'public',
    table_name TEXT NOT NULL,
    schema_table JSONB,
    catalog_fingerprint TEXT,
    table_oid BIGINT,
    table_kind TEXT,
    replica_identity TEXT,
    has_select_privilege BOOLEAN,
    status TEXT NOT NULL DEFAULT 'tracked',
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    healed_at TIMESTAMPTZ,
    removed_at TIMESTAMPTZ,
    CONSTRAINT table_metadata_list_status_check CHECK (status IN ('tracked', 'removed', 'error')),
    CONSTRAINT table_metadata_list_source_table_key UNIQUE (source_id, schema_name, table_name)
);

CREATE TABLE history_schema_evolution (
    id BIGSERIAL PRIMARY KEY,
    table_metadata_list_id BIGINT NOT NULL REFERENCES table_metadata_list (id) ON DELETE CASCADE,
    version_schema INTEGER NOT NULL,
    changes_type TEXT NOT NULL,
    schema_table_old JSONB,
    schema_table_new JSONB,
    changes JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX history_schema_evolution_table_idx
    ON history_schema_evolution (table_metadata_list_id, version_schema);
