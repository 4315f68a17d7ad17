# syntax=docker/dockerfile:1
# informerd image: `docker build -t informerd .`; with plugin packages from the build context:
#   docker build --build-arg PLUGINS="examples/backup-controller" -t informerd-backup .
# Not built in CI (no container engine there); hadolint checks this file (tests/unit/test_dockerfile.py).

# Stage 1: wheels of informerd, the plugin packages and every dependency (the only stage with a network).
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY . .
# Space-separated paths of plugin packages in the build context (pip-installable directories).
ARG PLUGINS=""
RUN pip wheel --no-cache-dir --wheel-dir /wheels . ${PLUGINS}

# Stage 2: the runtime, the wheels installed offline; no compiler, no sources, no pip cache.
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="informerd" \
      org.opencontainers.image.description="Kubernetes informer/cache engine and controller daemon" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl
# A numeric user: the chart's runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
# /metrics and /healthz,/readyz (the config's metricsBindAddress and healthProbeBindAddress).
EXPOSE 8080 8081
ENTRYPOINT ["informerd"]
CMD ["run", "--config", "/etc/informerd/config.yaml"]
