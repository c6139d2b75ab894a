# syntax=docker/dockerfile:1
#
# Image of experio-sso-operator: `experio-sso run` as a non-root user on a read-only root
# filesystem. Build from the repository root:
#
#   docker build -t experio-sso-operator:0.1.0 .
#
# The build stage installs the pinned runtime dependencies (requirements.lock) and the
# operator into a virtual environment; the final stage copies only that environment onto a
# fresh slim Python, so pip's build dependencies never reach it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/experio-sso
ENV PATH=/opt/experio-sso/bin:$PATH

# Dependencies first, in their own layer, so that a code change reuses it. --no-deps makes
# the lock file the whole truth, and `pip check` fails the build when a pin is missing.
COPY requirements.lock /src/requirements.lock
RUN pip install --no-deps --only-binary=:all: -r /src/requirements.lock

# Byte-code is compiled here, once: at run time the filesystem is read-only and Python
# writes no cache.
COPY pyproject.toml README.md /src/
COPY operator/ /src/operator/
RUN pip install --no-deps /src \
    && pip check \
    && python -m compileall -q /opt/experio-sso/lib

FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="experio-sso-operator" \
      org.opencontainers.image.description="Kubernetes operator for Experio's enterprise SSO through the PropelAuth BYO sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/experio-sso/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=build /opt/experio-sso /opt/experio-sso

# A numeric user, so that the kubelet can verify runAsNonRoot without a passwd entry.
USER 65532:65532

# Liveness endpoint when EXPERIO_SSO_LIVENESS_URL=http://0.0.0.0:8080/healthz.
EXPOSE 8080

ENTRYPOINT ["experio-sso", "run"]
