"""HJ 212 (HJ 212-2017, HJ 212-2025 deltas, HJ/T 212-2005): the codec (pure) and the TCP listener.

``codec`` frames (length, CRC16), ``segment`` the data segment and CP items, ``split`` reassembles split
uploads, ``check`` backs ``ehs hj212 check``; the listener and its storage live beside them.
"""

from ingest.hj212.codec import Hj212Error, Refusal, crc16, split_frame, wrap
from ingest.hj212.segment import Message, Version, build_frame, build_segment, cp_groups, flag_of, parse_frame

__all__ = [
    "Hj212Error",
    "Message",
    "Refusal",
    "Version",
    "build_frame",
    "build_segment",
    "cp_groups",
    "crc16",
    "flag_of",
    "parse_frame",
    "split_frame",
    "wrap",
]
