# One image for every process of the system: `circles run <process>` picks which (see services/processes.py).
#
#   docker build -t circles:0.1.0 .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 circles:0.1.0 circles run referrals-worker
#
# Only the runtime dependencies are installed (not the [dev] extras), from requirements.lock. Python 3.11 is the version the test
# suite runs on. The image runs as an unprivileged user and writes only to /data (and /tmp).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
# The lock file pins every dependency (and the build backend) with its hashes; the project goes on top.
RUN python -m venv /opt/circles \
    && /opt/circles/bin/pip install --no-compile --require-hashes -r requirements.lock \
    && /opt/circles/bin/pip install --no-compile --no-deps --no-build-isolation . \
    && /opt/circles/bin/python -m compileall -q /opt/circles/lib

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="circles" \
      org.opencontainers.image.description="Circles referral platform: every service process in one image"
RUN groupadd --system --gid 10001 circles \
    && useradd --system --uid 10001 --gid circles --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin circles \
    && mkdir -p /data \
    && chown circles:circles /data
COPY --from=build /opt/circles /opt/circles
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/circles-entrypoint
ENV PATH=/opt/circles/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CIRCLES_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
# APIs: referrals 8080, matching 8081, coordinator page 8082; workers' probes and metrics: 8090 by convention
# (the port is whatever CIRCLES_HEALTH_PORT says; the compose file and the manifests set 8090).
EXPOSE 8080 8081 8082 8090
ENTRYPOINT ["/usr/local/bin/circles-entrypoint"]
CMD ["circles", "run", "referrals-api"]
