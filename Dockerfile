# The image SRE teams deploy. Mount your configuration at /etc/aiops (agent.yaml, services.yaml,
# rules.yaml) and a volume at /var/lib/aiops for the SQLite store (or point AIOPS_STORE_URL at PostgreSQL)
# and the log sources' positions and templates. Mount the logs to tail read-only where log_sources point.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LC_ALL=C.UTF-8 \
    LANG=C.UTF-8

# openssh-client: runbooks reach remote hosts over SSH; tini: forwards SIGTERM and reaps Ansible's children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/aiops
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY detectors ./detectors
COPY integrations ./integrations
RUN pip install ".[postgres]"

COPY runbooks /opt/aiops/runbooks
COPY config /etc/aiops
RUN AIOPS_CATALOG=/opt/aiops/runbooks/catalog.yaml aiops check-config -c /etc/aiops/agent.yaml

RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/aiops aiops \
    && chown -R aiops:aiops /var/lib/aiops

USER aiops
WORKDIR /var/lib/aiops
ENV AIOPS_STORE_URL=sqlite:////var/lib/aiops/aiops.db \
    AIOPS_STATE_DIR=/var/lib/aiops/state \
    AIOPS_API_LISTEN=0.0.0.0:8080 \
    AIOPS_CATALOG=/opt/aiops/runbooks/catalog.yaml
VOLUME ["/var/lib/aiops"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"

ENTRYPOINT ["tini", "--", "aiops"]
CMD ["run", "-c", "/etc/aiops/agent.yaml"]
