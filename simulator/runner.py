"""Publish the simulated plant over MQTT: one connection per device, as real devices do.

Each device connects with a retained ``offline`` last will and announces ``online``; telemetry goes to
``ehs/v1/{site}/{device}/telemetry`` as ``{"ts": ms, "seq": n, "values": {...}}`` at QoS 1. Incidents are
started and cleared on ``ehs/v1/{site}/_sim/control`` (see ``ehs simulate incident``); the simulator reports
what it did on ``ehs/v1/{site}/_sim/events``. Actuators (fans, sprinklers, valves, line stops, cabinets)
subscribe to ``.../cmd``, check each command's signature and expiry, and acknowledge on ``.../cmd/ack``
(``simulator.actuators``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import orjson
import paho.mqtt.client as mqtt

from core import mqtt as mq
from core import topics
from core.plant import PlantConfig
from simulator.plant import SimDevice, SimPlant

_LOGGER = logging.getLogger(__name__)


def control_topic(site: str) -> str:
    return f"{topics.PREFIX}/{site}/_sim/control"


def events_topic(site: str) -> str:
    return f"{topics.PREFIX}/{site}/_sim/events"


class SimulatorRunner:
    def __init__(
        self,
        plant: PlantConfig,
        mqtt_url: str,
        *,
        protocol: int | None = None,
        seed: int = 7,
        rate_scale: float = 1.0,
        speed: float = 1.0,
        dropout: float = 0.002,
        outage_per_hour: float = 0.05,
        qos: int = 1,
        secret: str | bytes = b"",
    ) -> None:
        self.address = mq.BrokerAddress.parse(mqtt_url)
        self.protocol = protocol or mq.detect_protocol(self.address)
        self.sim = SimPlant(
            plant,
            seed=seed,
            rate_scale=rate_scale,
            speed=speed,
            dropout=dropout,
            outage_per_hour=outage_per_hour,
            secret=secret,
        )
        self.commands: queue.Queue[tuple[str, str, bytes]] = queue.Queue(maxsize=10_000)
        self.qos = qos
        self.sites = sorted({site.code for site in plant.sites})
        self.clients: dict[tuple[str, str], mqtt.Client] = {}
        self.control: mqtt.Client | None = None
        self.published = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _device_client(self, device: SimDevice) -> mqtt.Client:
        client = mq.new_client(self.address, f"sim-{device.site}-{device.code}", protocol=self.protocol)
        client.will_set(topics.device_topic(device.site, device.code, topics.STATUS), b"offline", qos=1, retain=True)
        status_topic = topics.device_topic(device.site, device.code, topics.STATUS)
        cmd_topic = topics.device_topic(device.site, device.code, topics.CMD)
        actuator = (device.site, device.code) in self.sim.actuators.actuators

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.publish(status_topic, b"online", qos=1, retain=True)
            if actuator:
                c.subscribe(cmd_topic, qos=1)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            try:
                self.commands.put_nowait((device.site, device.code, msg.payload))
            except queue.Full:
                _LOGGER.warning("%s: command queue full, command dropped (it will time out)", device.code)

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect_async(self.address.host, self.address.port, keepalive=30)
        client.loop_start()
        return client

    def _on_control(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        site = msg.topic.split("/")[2] if msg.topic.count("/") >= 2 else ""
        if msg.topic != control_topic(site) or site not in self.sites:
            # amqtt 0.12 also hands a new subscriber retained messages of other topics (device statuses)
            return
        try:
            body = orjson.loads(msg.payload)
            action = body.get("action")
            with self._lock:
                if action == "start":
                    area = self.sim.start_incident(
                        body["incident"], time.time(), area=body.get("area"), device=body.get("device")
                    )
                    reply = {"ok": True, "action": "start", "incident": body["incident"], "area": area}
                elif action == "clear":
                    cleared = self.sim.clear_incident(body.get("incident"), time.time())
                    reply = {"ok": True, "action": "clear", "cleared": cleared}
                else:
                    reply = {"ok": False, "error": f"unknown action {action!r}"}
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "error": str(exc)}
        _LOGGER.info("simulator control: %s", reply)
        _client.publish(events_topic(site), orjson.dumps({**reply, "request_id": _safe_id(msg.payload)}), qos=1)

    def start(self) -> None:
        self.control = mq.new_client(self.address, protocol=self.protocol)
        self.control.on_message = self._on_control
        self.control.on_connect = lambda c, *_: c.subscribe([(control_topic(s), 1) for s in self.sites])
        mq.connect_blocking(self.control, self.address)
        for key, device in self.sim.devices.items():
            self.clients[key] = self._device_client(device)
        self._thread = threading.Thread(target=self._loop, name="simulator", daemon=True)
        self._thread.start()

    def _obey(self, now: float) -> None:
        """Answer the commands that arrived, and report those carried out (on each device's own connection)."""
        replies: list[tuple[str, str, bytes]] = []
        while True:
            try:
                site, code, payload = self.commands.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                replies += [(site, code, reply) for reply in self.sim.actuators.handle(site, code, payload, now)]
        with self._lock:
            for actuator, reply in self.sim.actuators.finish(now):
                replies.append((actuator.site, actuator.device, reply))
                self.sim.devices[(actuator.site, actuator.device)].next_due = now  # report the new state now
        for site, code, reply in replies:
            self.clients[(site, code)].publish(topics.device_topic(site, code, topics.CMD_ACK), reply, qos=1)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            now = time.time()
            self._obey(now)
            with self._lock:
                due = self.sim.due(now)
                back = self.sim.back_online(now)
            for device in back:
                self.clients[(device.site, device.code)].publish(
                    topics.device_topic(device.site, device.code, topics.STATUS), b"online", qos=1, retain=True
                )
            for device, values in due:
                client = self.clients[(device.site, device.code)]
                if values is None:
                    client.publish(
                        topics.device_topic(device.site, device.code, topics.STATUS), b"offline", qos=1, retain=True
                    )
                    continue
                payload = orjson.dumps({"ts": int(now * 1000), "seq": device.seq, "values": values})
                client.publish(topics.device_topic(device.site, device.code, topics.TELEMETRY), payload, qos=self.qos)
                self.published += len(values)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        if self.control is not None:
            self.control.disconnect()
            self.control.loop_stop()


def _safe_id(payload: bytes) -> str | None:
    try:
        value = orjson.loads(payload).get("request_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def send_control(mqtt_url: str, site: str, body: dict, *, timeout: float = 10.0) -> dict:
    """Ask a running simulator to start or clear an incident; return its reply."""
    import uuid

    address = mq.BrokerAddress.parse(mqtt_url)
    protocol = mq.detect_protocol(address)
    request_id = uuid.uuid4().hex
    reply: dict = {}
    got = threading.Event()

    def on_message(_c, _u, msg) -> None:
        # Anything else that arrives (amqtt 0.12 also delivers retained messages of other topics, such as the
        # devices' plain-text statuses) is ignored: an exception here would end paho's network thread.
        if msg.topic != events_topic(site):
            return
        try:
            data = orjson.loads(msg.payload)
        except ValueError:
            return
        if isinstance(data, dict) and data.get("request_id") == request_id:
            reply.update(data)
            got.set()

    subscribed = threading.Event()
    client = mq.new_client(address, protocol=protocol)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(events_topic(site), qos=1)
    mq.connect_blocking(client, address)
    try:
        if not subscribed.wait(timeout):
            raise TimeoutError(
                f"the broker at {address.host}:{address.port} did not confirm the subscription to "
                f"{events_topic(site)} within {timeout:g} s"
            )
        client.publish(control_topic(site), orjson.dumps({**body, "request_id": request_id}), qos=1)
        if not got.wait(timeout):
            raise TimeoutError(
                f"no simulator answered on {control_topic(site)} within {timeout:g} s; is `ehs up --demo` running?"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return reply
