-- Users, refresh tokens and API keys of the HTTP API (api/auth.py, api/users.py).
-- Secrets are never stored in the clear: passwords as argon2id hashes, refresh tokens and API keys as SHA-256
-- of 256-bit random values (a slow hash adds nothing for secrets that cannot be guessed), TOTP seeds encrypted
-- with AES-256-GCM under a key derived from EHS_SECRET_KEY (which is not in the database).

CREATE TABLE app_user (
    id                  serial PRIMARY KEY,
    username            text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    display_name        text NOT NULL DEFAULT '',
    role                text NOT NULL CHECK (role IN ('admin', 'ehs_manager', 'operator', 'viewer', 'regulator')),
    -- site scope: the listed sites, or every site (present and future) when all_sites
    site_ids            integer[] NOT NULL DEFAULT '{}',
    all_sites           boolean NOT NULL DEFAULT false,
    password_hash       text NOT NULL,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    -- TOTP (RFC 6238): encrypted seed; a pending seed until the first code confirms it
    mfa_secret          bytea,
    mfa_pending_secret  bytea,
    mfa_enabled         boolean NOT NULL DEFAULT false,
    -- the last accepted time step: a code is accepted once (RFC 6238 section 5.2)
    mfa_last_step       bigint,
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    -- bumped when role, sites, password or MFA change or the user is disabled: older tokens stop working
    token_version       integer NOT NULL DEFAULT 1,
    disabled_at         timestamptz,
    last_login_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (all_sites OR cardinality(site_ids) > 0)
);
CREATE UNIQUE INDEX app_user_username_idx ON app_user (username);

-- Refresh tokens rotate: each use marks the token used and issues the next one of the same family; a used
-- token presented again means it was stolen, so the whole family is revoked (OAuth 2.0 Security BCP, RFC 9700
-- section 4.14.2).
CREATE TABLE refresh_token (
    id          bigserial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES app_user (id),
    family      uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_token_family_idx ON refresh_token (family);
CREATE INDEX refresh_token_user_idx ON refresh_token (user_id) WHERE revoked_at IS NULL;

-- API keys for devices and integrations: "ehs_<prefix>_<secret>", found by prefix, checked by hash.
CREATE TABLE api_key (
    id            serial PRIMARY KEY,
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{8}$'),
    key_hash      bytea NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('ehs_manager', 'operator', 'viewer', 'regulator', 'device')),
    site_ids      integer[] NOT NULL DEFAULT '{}',
    all_sites     boolean NOT NULL DEFAULT false,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK (all_sites OR cardinality(site_ids) > 0)
);
