#!/bin/sh
# The demo: installs what it needs, builds, then moves sample Debezium events from a local
# Kafka to a local Kinesis with kinesink and prints what arrived.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
echo "building kinesink..."
./scripts/build.sh build
exec /usr/bin/python3 scripts/demo.py
