"""``ehs devices``: MQTT credentials of the plant's devices, one per site and device (core.identity).

``ehs devices credentials PLANT.yaml`` writes ``deploy/mosquitto/devices/devices.txt`` (``site/device password``
lines, mode 0600, not committed) that the Mosquitto container's entrypoint turns into its password file; devices
already listed keep their passwords, new ones get a random one, removed ones are dropped. ``--password-file``
also writes a Mosquitto password file directly (PBKDF2-SHA512, the ``$7$`` format of ``mosquitto_passwd``), with
the service accounts whose passwords are in ``MQTT_INGEST_PASSWORD``, ``MQTT_ALERTS_PASSWORD`` and
``MQTT_SCADA_PASSWORD``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

import typer

from cli.common import REPO_ROOT
from core.identity import device_username

app = typer.Typer(no_args_is_help=True, help="MQTT credentials of devices (one per site and device).")

DEVICES_TXT = REPO_ROOT / "deploy" / "mosquitto" / "devices" / "devices.txt"
SERVICE_ACCOUNTS = {
    "ehs-ingest": "MQTT_INGEST_PASSWORD",
    "ehs-alerts": "MQTT_ALERTS_PASSWORD",
    "ehs-scada": "MQTT_SCADA_PASSWORD",
    "ehs-hj212": "MQTT_HJ212_PASSWORD",
}
#: PBKDF2 rounds; the passwords are random (about 190 bits), so the work factor guards nothing and would only slow
#: every device's login (mosquitto_passwd's own default is 101).
_ITERATIONS = 1000


def plant_usernames(plant) -> list[str]:
    """``site/device`` of every device in a plant configuration (``core.plant.PlantConfig``)."""
    return [
        device_username(site.code, device.code)
        for site in plant.sites
        for area in site.areas
        for device in area.devices
    ]


def read_credentials(path: Path) -> dict[str, str]:
    """``user password`` lines; ``#`` comments and blank lines skipped."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            user, _, password = line.strip().partition(" ")
            out[user] = password.strip()
    return out


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def device_credentials(usernames: list[str], existing: dict[str, str]) -> dict[str, str]:
    """A password for each device: the one it has, else a new random one."""
    return {user: existing.get(user) or secrets.token_urlsafe(24) for user in usernames}


def write_credentials(path: Path, credentials: dict[str, str]) -> None:
    lines = "".join(f"{user} {password}\n" for user, password in sorted(credentials.items()))
    _write_private(path, "# site/device password (ehs devices credentials; keep private, never commit)\n" + lines)


def password_line(user: str, password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """One line of a Mosquitto 2 password file (``$7$``: PBKDF2-HMAC-SHA512, 12-byte salt, as mosquitto_passwd)."""
    if ":" in user or any(c in user for c in "+#") or not password:
        raise ValueError(f"cannot make an MQTT account for {user!r}")
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"{user}:$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_password_file(path: Path, credentials: dict[str, str]) -> None:
    _write_private(path, "".join(password_line(u, p) + "\n" for u, p in sorted(credentials.items())))


@app.command()
def credentials(
    plant_file: Path = typer.Argument(..., help="Plant configuration (sites, areas, devices)"),
    out: Path = typer.Option(DEVICES_TXT, help="devices.txt to write (kept passwords stay)"),
    password_file: Path | None = typer.Option(None, help="Also write a Mosquitto password file here"),
) -> None:
    """Write one MQTT credential per site and device (user name ``site/device``) from the plant configuration."""
    from core.plant import load_plant
    from core.yamlconf import ConfigError

    try:
        plant = load_plant(plant_file)
    except ConfigError as exc:
        typer.echo("Configuration refused:\n  " + "\n  ".join(exc.problems), err=True)
        raise typer.Exit(1) from None
    existing = read_credentials(out)
    creds = device_credentials(plant_usernames(plant), existing)
    write_credentials(out, creds)
    added = sorted(set(creds) - set(existing))
    dropped = sorted(set(existing) - set(creds))
    typer.echo(
        f"{out}: {len(creds)} device(s), {len(added)} new, {len(dropped)} removed"
        + (f" ({', '.join(dropped)})" if dropped else "")
    )
    if password_file is not None:
        services = {user: os.environ[var] for user, var in SERVICE_ACCOUNTS.items() if os.environ.get(var)}
        write_password_file(password_file, {**creds, **services})
        typer.echo(
            f"{password_file}: {len(creds)} device(s) and {len(services)} service account(s) "
            f"({', '.join(sorted(services)) or 'set MQTT_INGEST_PASSWORD... to add them'})"
        )
