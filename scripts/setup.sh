#!/bin/sh
# Installs what kinesink's build, tests and demo need on Debian 12, and nothing else:
# Debian packages with apt-get, and the pinned Kinesis emulator from tests/node's lock file.
# Idempotent: a second run installs nothing and takes a second.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential autoconf automake libtool pkg-config
librdkafka-dev libcurl4-openssl-dev libssl-dev libavro-dev libjansson-dev libcunit1-dev
libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
kcat clang valgrind prometheus
python3-botocore python3-boto3 python3-avro python3-confluent-kafka python3-yaml awscli"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm may come from Debian or elsewhere (npm is bundled with some builds): only the commands matter.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# The emulator, exactly as locked.
if [ ! -f tests/node/node_modules/kinesis-local/main.js ] ||
   ! cmp -s tests/node/package-lock.json tests/node/node_modules/.package-lock.json; then
	echo "setup: installing the Kinesis emulator (npm ci)"
	(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ready"
