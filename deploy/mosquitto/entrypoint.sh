#!/bin/sh
# Build the password file from the environment (service passwords) and devices.txt ("site/device password" lines,
# written by `ehs devices credentials PLANT.yaml`),
# then start Mosquitto. Hashes are made by mosquitto_passwd; plain passwords never reach the image.
set -eu
conf=/mosquitto/config
: > "$conf/passwd"
chmod 0700 "$conf/passwd"
mosquitto_passwd -b "$conf/passwd" ehs-ingest "${MQTT_INGEST_PASSWORD:?set MQTT_INGEST_PASSWORD}"
mosquitto_passwd -b "$conf/passwd" ehs-alerts "${MQTT_ALERTS_PASSWORD:?set MQTT_ALERTS_PASSWORD}"
mosquitto_passwd -b "$conf/passwd" ehs-hj212 "${MQTT_HJ212_PASSWORD:?set MQTT_HJ212_PASSWORD}"
mosquitto_passwd -b "$conf/passwd" ehs-scada "${MQTT_SCADA_PASSWORD:?set MQTT_SCADA_PASSWORD}"
if [ -f /mosquitto/devices/devices.txt ]; then
    grep -v '^#' /mosquitto/devices/devices.txt | while read -r user password; do
        [ -n "$user" ] && mosquitto_passwd -b "$conf/passwd" "$user" "$password"
    done
fi
exec mosquitto -c "$conf/mosquitto.conf"
