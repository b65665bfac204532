# The hub's image for production-like deployments (docker-compose.yml). Not built on the development machines,
# where Docker does not run: see the README.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub hub
COPY connectors connectors
COPY routing routing
COPY schemas schemas
RUN pip install --no-cache-dir .
USER nobody
ENV HUB_WEB_HOST=0.0.0.0 HUB_DATA_DIR=/tmp/hub
EXPOSE 6066
CMD ["hub", "worker"]
