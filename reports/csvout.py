"""The CSV renderer: every table of the document in one UTF-8 file (with a byte-order mark, so Excel reads the
Chinese), each block starting with a ``# key: title`` line, then the headers with units, then the rows; times in
ISO 8601 with the site's offset."""

from __future__ import annotations

import csv
import io

from reports.model import ColType, Document


def render_csv(doc: Document) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for n, table in enumerate(doc.tables()):
        if n:
            writer.writerow([])
        writer.writerow([f"# {table.key}: {table.title}"])
        writer.writerow([c.header() for c in table.columns])
        for values in table.rows:
            writer.writerow(
                [
                    ""
                    if v is None
                    else doc.local(v).isoformat()
                    if c.type is ColType.DATETIME
                    else (1 if v else 0)
                    if c.type is ColType.BOOL
                    else v
                    for c, v in zip(table.columns, values, strict=True)
                ]
            )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
