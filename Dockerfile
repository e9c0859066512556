# portscan as a container image: `docker build -t portscan .`, then
#   docker run --rm -v "$PWD:/work" portscan image oci-archive:/work/app.tar
# docs/integrations.md says how to scan the host's engine and registries from it.
# BASE may name any Python 3.11+ image with pip (the tests build from a local copy).
ARG BASE=python:3.11-slim
FROM ${BASE}

LABEL org.opencontainers.image.title="portscan" \
      org.opencontainers.image.description="Static analysis of container images for WebAssembly (WASI) portability" \
      org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY portscan ./portscan
COPY signatures ./signatures
RUN python3 -m pip install --no-cache-dir --disable-pip-version-check . \
    && rm -rf /src \
    && portscan version

WORKDIR /work
ENTRYPOINT ["portscan"]
CMD ["--help"]
