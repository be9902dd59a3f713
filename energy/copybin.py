"""PostgreSQL binary COPY rows of ``energy_interval`` built with numpy (no Python work per row).

Binary COPY format (PostgreSQL docs, "COPY", Binary Format): an 11-byte signature, flags and header-extension
length, then per tuple an int16 field count and per field an int32 length (-1 for NULL) and the value in network
byte order; an int16 -1 ends the data. timestamptz is int64 microseconds since 2000-01-01 UTC. Each row is laid
out in a padded byte matrix and compacted with a mask, because the text fields differ in length.
"""

from __future__ import annotations

import struct

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800 * 1_000_000


def _texts(words: list[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Padded length-prefixed fields of each word (None: NULL) and the mask of their real bytes."""
    width = 4 + max(len(w or b"") for w in words)
    pad = np.zeros((len(words), width), dtype=np.uint8)
    mask = np.zeros((len(words), width), dtype=bool)
    for i, w in enumerate(words):
        field = struct.pack(">i", -1) if w is None else struct.pack(">i", len(w)) + w
        pad[i, : len(field)] = np.frombuffer(field, dtype=np.uint8)
        mask[i, : len(field)] = True
    return pad, mask


def interval_rows(
    meter_id: int,
    starts_s: np.ndarray,
    quantity: np.ndarray,
    quality: np.ndarray,
    quality_words: tuple[str, ...],
    band: np.ndarray,
    band_words: tuple[str, ...],
    cost: np.ndarray,
) -> bytes:
    """Binary COPY body (no header) of rows (meter_id, start, quantity, quality, band, cost_cny).

    ``quality`` indexes ``quality_words``; ``band`` indexes ``band_words`` or is -1 (NULL); NaN cost is NULL.
    """
    n = len(starts_s)
    if n == 0:
        return b""
    fixed = np.zeros(
        n,
        dtype=[
            ("nf", ">i2"),
            ("l1", ">i4"),
            ("meter", ">i4"),
            ("l2", ">i4"),
            ("ts", ">i8"),
            ("l3", ">i4"),
            ("qty", ">f8"),
        ],
    )
    fixed["nf"], fixed["l1"], fixed["meter"], fixed["l2"], fixed["l3"] = 6, 4, meter_id, 8, 8
    fixed["ts"] = starts_s.astype(np.int64) * 1_000_000 - _PG_EPOCH_US
    fixed["qty"] = quantity
    head = fixed.view(np.uint8).reshape(n, -1)
    q_pad, q_mask = _texts([w.encode() for w in quality_words])
    b_pad, b_mask = _texts([*(w.encode() for w in band_words), None])
    b_index = np.where(band < 0, len(band_words), band)
    costs = np.zeros(n, dtype=[("l", ">i4"), ("v", ">f8")])
    null = np.isnan(cost)
    costs["l"] = np.where(null, -1, 8)
    costs["v"] = np.where(null, 0.0, cost)
    c_bytes = costs.view(np.uint8).reshape(n, -1)
    c_mask = np.ones_like(c_bytes, dtype=bool)
    c_mask[null, 4:] = False
    matrix = np.hstack([head, q_pad[quality], b_pad[b_index], c_bytes])
    mask = np.hstack([np.ones_like(head, dtype=bool), q_mask[quality], b_mask[b_index], c_mask])
    return matrix[mask].tobytes()
