"""Keys from one place (core.keys): the library's HKDF gives RFC 5869's answers and the keys of the code it
replaced (committed vectors); one sealing scheme that still reads the former AES-GCM frames; rotation of the
service secret leaves every sealed secret readable."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import keys
from core.commands import device_key
from core.keys import Keyring, SealError

VECTORS = json.loads((Path(keys.__file__).parent / "testvectors" / "keys.json").read_text(encoding="utf-8"))
OLD = "k7Qz-9vLx2TtB1mRw8yHc4NfJ0pDa6GsEu5Ko3iXhVbZ"
NEW = "Wm3q_Z8rT1vYp6LxK0cN4dHs9BfJ2gUeA7iOoR5tQyEw"

# RFC 5869 appendix A, test cases 1-3 (SHA-256): (IKM, salt, info, L, OKM)
RFC5869 = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x00, 0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
        "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    ("0b" * 22, "", "", 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869)
def test_hkdf_gives_the_rfc_5869_answers(ikm: str, salt: str, info: str, length: int, okm: str) -> None:
    got = keys.hkdf_sha256(bytes.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length)
    assert got.hex() == okm


def test_hkdf_derives_the_keys_of_the_former_code() -> None:
    for v in VECTORS["hkdf_sha256"]:
        got = keys.hkdf_sha256(
            v["ikm_utf8"].encode(),
            salt=bytes.fromhex(v["salt_hex"]),
            info=bytes.fromhex(v["info_hex"]),
            length=v["length"],
        )
        assert got.hex() == v["okm_hex"], v
    for v in VECTORS["device_keys"]:
        assert device_key(v["secret_utf8"], v["site"], v["device"]).hex() == v["key_hex"]


def test_label_keys_are_the_former_api_keys() -> None:
    for v in VECTORS["label_keys"]:
        assert keys.label_key(v["secret_utf8"], v["purpose"]).hex() == v["key_hex"], v


def test_former_sealed_values_still_unseal() -> None:
    for v in VECTORS["aes_gcm_frames"]:
        frame = bytes.fromhex(v["frame_hex"])
        assert keys.unseal(v["secret_utf8"], frame, purpose="totp", context=v["context"]) == v["plaintext"]
        with pytest.raises(SealError):  # bound to its row, as before
            keys.unseal(v["secret_utf8"], frame, purpose="totp", context="totp:999")
        with pytest.raises(SealError):
            keys.unseal(NEW, frame, purpose="totp", context=v["context"])
    for v in VECTORS["fernet_tokens"]:
        assert keys.unseal(v["secret_utf8"], v["token"].encode(), purpose=v["purpose"]) == v["plaintext"]
        with pytest.raises(SealError):  # one key per purpose
            keys.unseal(v["secret_utf8"], v["token"].encode(), purpose="other")


def test_context_binds_a_sealed_value_to_its_row() -> None:
    token = keys.seal(OLD, "JBSWY3DPEHPK3PXP", purpose="totp", context="totp:1")
    assert keys.unseal(OLD, token, purpose="totp", context="totp:1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError, match="another record"):
        keys.unseal(OLD, token, purpose="totp", context="totp:2")


def test_rotation_reads_with_previous_secrets_and_reseals_under_the_new_one() -> None:
    old_token = keys.seal(OLD, "dingtalk://abc", purpose="channel-url")
    ring = Keyring.parse_previous(NEW, f" {OLD} , ,{NEW}")
    assert ring == Keyring(NEW, (OLD,))
    with pytest.raises(SealError, match="EHS_SECRET_KEY_PREVIOUS"):
        keys.unseal(NEW, old_token, purpose="channel-url")
    assert keys.unseal(ring, old_token, purpose="channel-url") == "dingtalk://abc"
    assert keys.needs_reseal(ring, old_token, purpose="channel-url")
    fresh = keys.reseal(ring, old_token, purpose="channel-url")
    assert not keys.needs_reseal(ring, fresh, purpose="channel-url")
    assert keys.unseal(NEW, fresh, purpose="channel-url") == "dingtalk://abc"


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(max_size=200),
    context=st.text(max_size=40).filter(lambda c: "\x00" not in c),
    purpose=st.sampled_from(["channel-url", "totp", "vapid-private-key"]),
)
def test_seal_round_trips(value: str, context: str, purpose: str) -> None:
    token = keys.seal(Keyring(NEW, (OLD,)), value, purpose=purpose, context=context)
    assert keys.unseal(NEW, token, purpose=purpose, context=context) == value


def _former_frame(secret: str, plaintext: str, context: str) -> bytes:
    """A TOTP seed sealed the way api.security sealed it before core.keys (format checked by the vectors above)."""
    nonce = secrets.token_bytes(12)
    return (
        b"\x01"
        + nonce
        + AESGCM(keys.label_key(secret, "totp-seal")).encrypt(nonce, plaintext.encode(), context.encode())
    )


def _user(conn: psycopg.Connection, name: str, mfa: bytes | None, pending: bytes | None) -> int:
    return conn.execute(
        "INSERT INTO app_user (username, password_hash, role, all_sites, mfa_secret, "
        "mfa_pending_secret, mfa_enabled) VALUES (%s, 'x', 'operator', true, %s, %s, %s) "
        "RETURNING id",
        (name, mfa, pending, mfa is not None),
    ).fetchone()[0]


@pytest.mark.db
def test_after_rotation_and_reseal_every_sealed_secret_opens_with_the_new_key(database_url: str) -> None:
    from alerts.notifications import notify_config, webpush
    from api import auth
    from api.settings import ApiSettings
    from core.settings import CoreSettings

    with psycopg.connect(database_url) as conn:
        notify_config.put_channel(
            conn=conn,
            secret=OLD,
            spec=notify_config.ChannelSpec(name="ding", kind="dingtalk", url="dingtalk://TOKEN123/?secret=SEC456"),
        )
        public, private = webpush.vapid_keys(conn=conn, secret=OLD)
        uid = _user(conn, "li.na", None, None)
        conn.execute(
            "UPDATE app_user SET mfa_secret = %s, mfa_enabled = true WHERE id = %s",
            (_former_frame(OLD, "JBSWY3DPEHPK3PXP", f"totp:{uid}"), uid),
        )
        pending = _user(conn, "wang.fang", None, None)
        conn.execute(
            "UPDATE app_user SET mfa_pending_secret = %s WHERE id = %s",
            (keys.seal(OLD, "KRSXG5CTMVRXEZLU", purpose="totp", context=f"totp:{pending}"), pending),
        )
        conn.commit()

        # the new secret alone reads nothing; with the previous one, everything, and reseal changes every value
        with pytest.raises(SealError):
            keys.reseal_all(conn, NEW)
        conn.rollback()
        done = keys.reseal_all(conn, Keyring(NEW, (OLD,)))
        assert done == {
            "notification_channel.url_sealed": 1,
            "vapid_key.private_sealed": 1,
            "app_user.mfa_secret": 1,
            "app_user.mfa_pending_secret": 1,
        }
        assert set(keys.reseal_all(conn, NEW).values()) == {0}  # nothing left under the old secret
        conn.commit()

        url = conn.execute("SELECT url_sealed FROM notification_channel WHERE name = 'ding'").fetchone()[0]
        assert keys.unseal(NEW, url, purpose="channel-url") == "dingtalk://TOKEN123/?secret=SEC456"
        assert webpush.vapid_keys(conn=conn, secret=NEW) == (public, private)
        cfg = auth.AuthConfig.from_settings(CoreSettings(secret_key=NEW, database_url=database_url), ApiSettings())
        assert cfg.keyring == Keyring(NEW)
        (mfa,) = conn.execute("SELECT mfa_secret FROM app_user WHERE id = %s", (uid,)).fetchone()
        assert auth.unseal_totp(cfg, mfa, user_id=uid) == "JBSWY3DPEHPK3PXP"
        assert auth.unseal_totp(cfg, mfa, user_id=pending) is None  # still bound to its row
        (pend,) = conn.execute("SELECT mfa_pending_secret FROM app_user WHERE id = %s", (pending,)).fetchone()
        assert auth.unseal_totp(cfg, pend, user_id=pending) == "KRSXG5CTMVRXEZLU"


@pytest.mark.db
def test_every_sealed_column_of_the_schema_is_resealed(database_url: str) -> None:
    """A new column holding sealed values must be listed in core.keys.SEALED_COLUMNS, or rotation misses it."""
    with psycopg.connect(database_url) as conn:
        found = {
            f"{t}.{c}"
            for t, c in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type = 'bytea' AND (column_name LIKE '%%sealed%%' OR column_name LIKE '%%secret%%')"
            )
        }
    assert found == {f"{c.table}.{c.column}" for c in keys.SEALED_COLUMNS}


@pytest.mark.db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=1, max_size=300))
def test_reseal_refuses_junk_from_the_database_with_the_row(database_url: str, junk: bytes) -> None:
    """Whatever bytes a sealed column holds, reseal either re-seals them (they were ours) or refuses naming the
    row, and the transaction is left to roll back: never another exception."""
    with psycopg.connect(database_url) as conn:
        uid = _user(conn, f"u{secrets.token_hex(4)}", junk, None)
        with pytest.raises(SealError, match=f"app_user.mfa_secret of row {uid}"):
            keys.reseal_all(conn, Keyring(NEW, (OLD,)))
        conn.rollback()


@pytest.mark.db
def test_console_rotation_keeps_secrets_links_and_audit_readable(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The README's procedure: new secret + previous one, ``ehs keys reseal``; then the new secret alone opens every
    stored secret, while links and audit entries of the old one need it in EHS_SECRET_KEY_PREVIOUS."""
    from datetime import UTC, datetime, timedelta

    from typer.testing import CliRunner

    from alerts.notifications import links, notify_config
    from cli.main import app
    from core import audit
    from core.links import LinkError
    from core.settings import get_settings

    runner = CliRunner()
    monkeypatch.setattr(audit, "_key", None)  # restored after the test: the chain key follows the settings
    monkeypatch.setattr(audit, "_previous", ())
    monkeypatch.setenv("EHS_DATABASE_URL", database_url)
    monkeypatch.setenv("EHS_DATA_DIR", str(tmp_path))  # its own anchors: the session's are signed with another secret

    def use(secret: str, previous: str | None = None) -> None:
        monkeypatch.setenv("EHS_SECRET_KEY", secret)
        if previous:
            monkeypatch.setenv("EHS_SECRET_KEY_PREVIOUS", previous)
        else:
            monkeypatch.delenv("EHS_SECRET_KEY_PREVIOUS", raising=False)
        get_settings.cache_clear()
        audit.configure(get_settings().keyring)

    now = datetime.now(UTC)
    use(OLD)
    with psycopg.connect(database_url) as conn:
        notify_config.put_channel(
            conn=conn,
            secret=get_settings().keyring,
            spec=notify_config.ChannelSpec(name="mail", kind="email", url="mailtos://ops:PASSWORD99@mail.example.com"),
        )
        audit.append(conn, actor="cli:test", action="config.apply", target="plant")
    link = links.make(get_settings().keyring, alarm_id=7, user_id=None, now=now, ttl=timedelta(hours=1))

    use(NEW)  # rotated without the previous secret: refused, nothing changed
    refused = runner.invoke(app, ["keys", "reseal"])
    assert refused.exit_code == 1 and "notification_channel.url_sealed of row" in refused.output

    use(NEW, previous=OLD)
    done = runner.invoke(app, ["keys", "reseal"])
    assert done.exit_code == 0, done.output
    assert "notification_channel.url_sealed: 1 re-sealed" in done.output
    assert links.read(get_settings().keyring, link, now=now).alarm_id == 7
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "intact: 2 entries" in verified.output

    use(NEW)
    with psycopg.connect(database_url) as conn:
        sealed = conn.execute("SELECT url_sealed FROM notification_channel WHERE name = 'mail'").fetchone()[0]
        assert keys.unseal(NEW, sealed, purpose="channel-url") == "mailtos://ops:PASSWORD99@mail.example.com"
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_entry ORDER BY seq")]
    assert actions == ["config.apply", "keys.reseal"]
    with pytest.raises(LinkError):  # links of the old secret need it among the previous ones
        links.read(get_settings().keyring, link, now=now)
    tampered = runner.invoke(app, ["audit", "verify"])  # so do audit entries written under it (history)
    assert tampered.exit_code == 1 and "seq 1" in tampered.output
    get_settings.cache_clear()
