# agentgw: an OpenAI-compatible gateway for AI agents.
#   docker build -t agentgw .
#   docker run -p 8080:8080 -e AGENTGW_KEY=change-me-please -v agentgw-data:/var/lib/agentgw agentgw
# Mount your own config at /etc/agentgw/config.yaml; provider keys come in as environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /opt/agentgw
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY routing ./routing
COPY policies ./policies
RUN pip install -c constraints.txt . && useradd --system --home-dir /var/lib/agentgw --create-home agentgw

COPY config.yaml /etc/agentgw/config.yaml

USER agentgw
# The ledger (./agentgw.db in the shipped config) lands in the working directory: keep it on a volume.
WORKDIR /var/lib/agentgw
VOLUME ["/var/lib/agentgw"]
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"

CMD ["agentgw", "serve", "--config", "/etc/agentgw/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
