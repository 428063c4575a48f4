#!/usr/bin/env bash
# The operating-system half of both images (Dockerfile.cpu, Dockerfile): what `make setup`
# needs to build Horovod, and sshd/ssh for multi-node horovodrun. Debian or Ubuntu, as root.
#   docker/install-os-packages.sh PYTHON_VERSION [EXTRA_PACKAGE ...]
# Python comes from the distribution unless the base image already has python$PYTHON_VERSION
# (the python:*-slim images keep theirs in /usr/local, with its headers).
set -euo pipefail
python_version=$1
shift
packages=(ca-certificates g++ make cmake git openssh-client openssh-server "$@")
if ! command -v "python${python_version}" >/dev/null; then
    packages+=("python${python_version}" "python${python_version}-dev" "python${python_version}-venv")
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*
mkdir -p /run/sshd
