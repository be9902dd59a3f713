"""MQTT ingest: subscriber, decoders, COPY writer, disk spool."""
