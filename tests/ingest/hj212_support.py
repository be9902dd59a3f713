"""Helpers for HJ 212 tests: a plant with data loggers, and an asyncio logger client speaking HJ 212."""

from __future__ import annotations

import asyncio
from datetime import datetime

from core.plant import PlantConfig
from ingest.hj212 import Message, build_frame, cp_groups, flag_of, parse_frame
from ingest.hj212.segment import Version, new_qn

PW = "123456"


def mn_of(i: int) -> str:
    return f"0100TEST{i:016d}"


def logger_device(i: int) -> dict:
    """A wastewater outfall logger: real-time and hourly COD, pH, hourly flow total, pump state and run time."""
    return {
        "code": f"ww-logger-{i:03d}",
        "name": f"总排口数采仪 {i}",
        "kind": "data_logger",
        "interval_s": 60,
        "points": [
            {"key": "cod_mg_l", "name": "COD", "quantity": "cod", "range": [0, 2000]},
            {"key": "cod_1h_mg_l", "name": "COD 小时均值", "quantity": "cod", "range": [0, 2000]},
            {"key": "ph_ph", "name": "pH", "quantity": "ph"},
            {"key": "flow_l_s", "name": "流量", "quantity": "flow", "range": [0, 1000]},
            {"key": "outflow_1h_m3", "name": "小时排水量", "quantity": "volume"},
            {"key": "pump_rs_code", "name": "提升泵状态", "quantity": "run_state", "range": [0, 5]},
            {"key": "pump_rt_h", "name": "提升泵运行时间", "quantity": "run_time"},
        ],
        "hj212": {
            "mn": mn_of(i),
            "password": PW,
            "st": "32",
            "fields": [
                {"field": "w01018-Rtd", "point": "cod_mg_l"},
                {"field": "w01001-Rtd", "point": "ph_ph"},
                {"field": "w00000-Rtd", "point": "flow_l_s"},
                {"field": "w01018-Avg", "cn": "2061", "point": "cod_1h_mg_l"},
                {"field": "w00000-Cou", "cn": "2061", "point": "outflow_1h_m3"},
                {"field": "SB1-RS", "point": "pump_rs_code"},
                {"field": "SB1-RT", "point": "pump_rt_h"},
            ],
        },
    }


def hj212_plant(site: str, loggers: int = 2) -> PlantConfig:
    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": f"测试厂 {site}",
                    "areas": [
                        {
                            "code": "wastewater",
                            "name": "污水站",
                            "process": "wastewater",
                            "devices": [logger_device(i) for i in range(loggers)],
                        }
                    ],
                }
            ]
        }
    )


def upload(
    mn: str,
    cn: str,
    items: list[dict],
    *,
    when: datetime,
    qn_ms: int = 0,
    ack: bool = True,
    pw: str = PW,
    st: str = "32",
    version: Version = Version.HJ212_2017,
    **extra,
) -> bytes:
    """An upload frame: DataTime first, then one CP group per dict."""
    qn = new_qn(when.replace(microsecond=qn_ms * 1000))
    return build_frame(
        Message(
            st=st,
            cn=cn,
            mn=mn,
            pw=pw,
            qn=qn,
            flag=flag_of(version, ack=ack),
            cp=cp_groups([{"DataTime": when}, *items]),
            **extra,
        )
    )


class LoggerClient:
    """One data logger on one TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> LoggerClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame if frame.endswith(b"\r\n") else frame + b"\r\n")
        await self.writer.drain()

    async def receive(self, timeout: float = 30.0) -> Message:
        return parse_frame(await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout))

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
