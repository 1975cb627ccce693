# agentgw: an OpenAI-compatible gateway for AI agents.
#   docker build -t agentgw .
#   docker run -p 8080:8080 -e AGENTGW_KEY="$(openssl rand -hex 24)" -v agentgw-data:/var/lib/agentgw agentgw
# The image's config (deploy/docker/config.yaml, at /etc/agentgw/config.yaml) listens on 0.0.0.0:8080
# and takes its key from AGENTGW_KEY (no default; at least 12 characters). Mount your own config over
# it to change anything: the command below sets no host or port, so the config's `server:` is used.

# A full version tag (the interpreter the image runs is the one named here). Pin a digest too
# (python:3.11.14-slim-bookworm@sha256:...) where a registry can be asked for it.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TIKTOKEN_CACHE_DIR=/opt/agentgw/tiktoken

WORKDIR /opt/agentgw
COPY constraints.txt ./

# tiktoken's encodings, fetched once at build time: a container never downloads them and never
# falls back to estimated token counts for want of them. tiktoken names each file by the SHA-1 of
# its download URL (checked below). This layer outlives code changes.
RUN pip install -c constraints.txt tiktoken \
 && python -c "import tiktoken; tiktoken.get_encoding('cl100k_base'); tiktoken.get_encoding('o200k_base')" \
 && test -s "$TIKTOKEN_CACHE_DIR/9b5ad71b2ce5302211f9c61530b329a4922fc6a4" \
 && test -s "$TIKTOKEN_CACHE_DIR/fb374d419588a4632f3f557e76b4b70aebbca790"

COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY routing ./routing
COPY policies ./policies
RUN pip install -c constraints.txt . \
 && groupadd --system --gid 10001 agentgw \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/agentgw --create-home agentgw

COPY deploy/docker/config.yaml /etc/agentgw/config.yaml

# A fixed uid, so a bind-mounted data directory can be given to it: chown -R 10001:10001 DIR.
USER 10001:10001
WORKDIR /var/lib/agentgw
VOLUME ["/var/lib/agentgw"]
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"

CMD ["agentgw", "serve", "--config", "/etc/agentgw/config.yaml"]
