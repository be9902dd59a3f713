# One image for every ehs-monitor service (migrate, ingest, alerts, api); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 EHS_DATA_DIR=/var/lib/ehs
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY core ./core
COPY ingest ./ingest
COPY detectors ./detectors
COPY alerts ./alerts
COPY energy ./energy
COPY carbon ./carbon
COPY hazwaste ./hazwaste
COPY api ./api
COPY simulator ./simulator
COPY cli ./cli
COPY benchmarks ./benchmarks
COPY mobile_pwa ./mobile_pwa
COPY examples ./examples
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home /var/lib/ehs ehs && mkdir -p /var/lib/ehs && chown ehs /var/lib/ehs
USER ehs
CMD ["python", "-m", "ingest"]
