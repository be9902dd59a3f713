"""The production broker configuration, on a real Mosquitto: the shipped ACL with a password file generated from
the plant configuration (`ehs devices credentials`). A device credential of one site can publish and read only
its own topics; the same device code on another site is out of its reach; the services still work."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from cli.devices_cmd import read_credentials
from core import mqtt as mq
from core.embedded import free_port, wait_for_port
from core.plant import dump_yaml, load_plant
from tests.support import REPO_ROOT

ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl"
DEMO = REPO_ROOT / "examples" / "demo-plant.yaml"
SERVICES = {
    var: f"{var.lower()}-{uuid.uuid4().hex}"
    for var in ("MQTT_INGEST_PASSWORD", "MQTT_ALERTS_PASSWORD", "MQTT_SCADA_PASSWORD", "MQTT_HJ212_PASSWORD")
}
pytestmark = pytest.mark.broker
A, B, DEV = "cz01", "cz02", "form-fan-01"  # the same device code on two sites


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail("the mosquitto binary is needed for the broker ACL test", pytrace=False)
    return found


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("acl")
    plant = load_plant(DEMO)
    two_sites = plant.model_copy(update={"sites": [plant.sites[0], plant.sites[0].model_copy(update={"code": B})]})
    (tmp / "plant.yaml").write_text(dump_yaml(two_sites))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EHS_", "MQTT_"))},
        **SERVICES,
        "PYTHONPATH": str(REPO_ROOT),
        "EHS_DATA_DIR": str(tmp / "var"),
    }
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "devices",
            "credentials",
            str(tmp / "plant.yaml"),
            "--out",
            str(tmp / "devices.txt"),
            "--password-file",
            str(tmp / "passwd"),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    creds = read_credentials(tmp / "devices.txt")
    assert f"{A}/{DEV}" in creds and f"{B}/{DEV}" in creds and creds[f"{A}/{DEV}"] != creds[f"{B}/{DEV}"]
    assert (tmp / "devices.txt").stat().st_mode & 0o777 == 0o600 == (tmp / "passwd").stat().st_mode & 0o777
    port = free_port()
    conf = tmp / "mosquitto.conf"
    # deploy/mosquitto/mosquitto.conf with a local port and paths; the ACL file is the shipped one, unchanged
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {tmp / 'passwd'}\n"
        f"acl_file {ACL}\nlog_dest file {tmp / 'mosquitto.log'}\nlog_type all\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    proc = subprocess.Popen([_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        yield {"port": port, "creds": creds, "log": tmp / "mosquitto.log"}
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    """A paho MQTT 5 client that records what it receives and the broker's reason codes."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, int] = {}
        self.granted: dict[int, list[int]] = {}
        self.connected: queue.Queue[int] = queue.Queue()
        address = mq.BrokerAddress.parse(f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}")
        self.client = mq.new_client(address, f"acl-{uuid.uuid4().hex[:10]}", protocol=mq.MQTTv5)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connected.put(rc.value)
        self.client.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.granted.__setitem__(mid, [r.value for r in rcs])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.code = self.connected.get(timeout=10)

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return _wait(lambda: self.acks.get(info.mid))

    def subscribe(self, *topics: str) -> list[int]:
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        return _wait(lambda: self.granted.get(mid))

    def received_until(self, sentinel: str) -> list[str]:
        """Topics received up to and including ``sentinel`` (published after everything that must not arrive)."""
        seen = []
        while True:
            topic, _ = self.messages.get(timeout=10)
            seen.append(topic)
            if topic == sentinel:
                return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(read):
    deadline = time.monotonic() + 10
    while (value := read()) is None:
        assert time.monotonic() < deadline, "the broker did not answer"
        time.sleep(0.01)
    return value


NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87


def _topic(site: str, channel: str) -> str:
    return f"ehs/v1/{site}/{DEV}/{channel}"


@pytest.fixture
def clients(broker: dict):
    made: list[Client] = []

    def connect(user: str, password: str | None = None) -> Client:
        client = Client(broker["port"], user, password if password is not None else broker["creds"][user])
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


def test_a_device_of_site_a_cannot_publish_as_the_same_device_of_site_b(clients) -> None:
    ingest = clients("ehs-ingest", SERVICES["MQTT_INGEST_PASSWORD"])
    alerts = clients("ehs-alerts", SERVICES["MQTT_ALERTS_PASSWORD"])
    assert ingest.subscribe("ehs/v1/+/+/telemetry", "ehs/v1/+/+/status") == [1, 1]
    assert alerts.subscribe("ehs/v1/+/+/cmd/ack") == [1]
    device_a = clients(f"{A}/{DEV}")
    assert device_a.code == 0
    for channel in ("telemetry", "status", "cmd/ack"):  # B's topics: refused by the broker
        assert device_a.publish(_topic(B, channel)) == NOT_AUTHORIZED, channel
    assert device_a.publish(f"ehs/v1/{B}/alarms") == NOT_AUTHORIZED
    assert device_a.publish(_topic(A, "cmd")) == NOT_AUTHORIZED  # nor can it command itself
    for channel in ("telemetry", "status", "cmd/ack"):  # its own: accepted and delivered
        assert device_a.publish(_topic(A, channel)) == 0, channel
    assert ingest.received_until(_topic(A, "status")) == [_topic(A, "telemetry"), _topic(A, "status")]
    assert alerts.received_until(_topic(A, "cmd/ack")) == [_topic(A, "cmd/ack")]


def test_a_device_of_site_a_reads_only_its_own_commands(clients) -> None:
    alerts = clients("ehs-alerts", SERVICES["MQTT_ALERTS_PASSWORD"])
    device_a = clients(f"{A}/{DEV}")
    # Mosquitto 2.0 grants the subscriptions and checks read access on every message it would deliver
    assert device_a.subscribe(_topic(B, "cmd"), "ehs/v1/#", _topic(A, "cmd"))[2] == 1
    for site in (B, A):  # the service commands both; A's comes last
        assert alerts.publish(_topic(site, "cmd"), b'{"site": "%s"}' % site.encode()) == 0
    assert set(device_a.received_until(_topic(A, "cmd"))) == {_topic(A, "cmd")}
    device_b = clients(f"{B}/{DEV}")  # B's own credential still reads B's commands
    assert device_b.subscribe(_topic(B, "cmd")) == [1]
    assert alerts.publish(_topic(B, "cmd")) == 0
    assert device_b.received_until(_topic(B, "cmd")) == [_topic(B, "cmd")]


def test_only_site_qualified_credentials_log_in_and_scada_reads_alarms(clients, broker: dict) -> None:
    assert clients(DEV, broker["creds"][f"{A}/{DEV}"]).code != 0  # the old per-code user name
    assert clients(f"{B}/{DEV}", broker["creds"][f"{A}/{DEV}"]).code != 0  # A's password is not B's
    scada = clients("ehs-scada", SERVICES["MQTT_SCADA_PASSWORD"])
    alerts = clients("ehs-alerts", SERVICES["MQTT_ALERTS_PASSWORD"])
    assert scada.subscribe("ehs/v1/+/alarms") == [1]
    assert scada.publish(f"ehs/v1/{A}/alarms") == NOT_AUTHORIZED
    assert alerts.publish(f"ehs/v1/{A}/alarms", b"{}") == 0
    assert scada.received_until(f"ehs/v1/{A}/alarms") == [f"ehs/v1/{A}/alarms"]


def test_credentials_are_kept_when_regenerated_and_removed_devices_dropped(tmp_path: Path) -> None:
    from cli.devices_cmd import device_credentials, write_credentials

    first = device_credentials([f"{A}/{DEV}", f"{A}/gone-01"], {})
    write_credentials(tmp_path / "devices.txt", first)
    again = device_credentials([f"{A}/{DEV}", f"{B}/{DEV}"], read_credentials(tmp_path / "devices.txt"))
    assert again[f"{A}/{DEV}"] == first[f"{A}/{DEV}"] and f"{A}/gone-01" not in again
    assert len(again[f"{B}/{DEV}"]) >= 32 and again[f"{B}/{DEV}"] != again[f"{A}/{DEV}"]


def test_the_hj212_relay_publishes_telemetry_of_any_device_and_nothing_else(clients) -> None:
    ingest = clients("ehs-ingest", SERVICES["MQTT_INGEST_PASSWORD"])
    relay = clients("ehs-hj212", SERVICES["MQTT_HJ212_PASSWORD"])
    assert relay.code == 0
    assert ingest.subscribe("ehs/v1/+/+/telemetry") == [1]
    for channel in ("status", "cmd", "cmd/ack"):  # no device's state, no commands
        assert relay.publish(_topic(A, channel)) == NOT_AUTHORIZED, channel
    assert relay.publish(f"ehs/v1/{A}/alarms") == NOT_AUTHORIZED
    for site in (A, B):  # the loggers' readings, on any site
        assert relay.publish(_topic(site, "telemetry")) == 0
    assert ingest.received_until(_topic(B, "telemetry")) == [_topic(A, "telemetry"), _topic(B, "telemetry")]
