# The hub's image for the production stack (docker-compose.yml): `pip install .` of this repository, run as
# `hub worker`. Docker does not run on the development machines; tests/unit/test_deploy.py checks that
# every path copied here exists and that every package pyproject.toml installs is copied.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md requirements.lock ./
COPY hub hub
COPY connectors connectors
COPY routing routing
COPY schemas schemas
# The lock pins every package with its hashes (the test extras too: small, and one lock to keep); then the hub.
RUN pip install --require-hashes -r requirements.lock && pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hub \
    && mkdir -p /tmp/hub && chown hub /tmp/hub

USER hub
# The worker's runtime files (faust's data directory); the case store is PostgreSQL (HUB_DATABASE_URL).
ENV HUB_WEB_HOST=0.0.0.0 \
    HUB_WEB_PORT=6066 \
    HUB_DATA_DIR=/tmp/hub
EXPOSE 6066
# 200 once the worker consumes; 503 while it starts or its group rebalances.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=3)"]
CMD ["hub", "worker"]
