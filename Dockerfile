# The bot's image (docs/deploy.md). Two stages: the first builds the wheel with a C compiler (the scoring
# hot path, engine/_native.c) and installs it into a venv; the second is a slim Python with that venv and
# no compiler, run as a non-root user.
#
#   docker build -t oncall-agent .
#   docker run -p 3000:3000 -e SLACK_BOT_TOKEN=xoxb-... -e SLACK_SIGNING_SECRET=... oncall-agent
#
# Volumes: /var/lib/oncall/models (ML_MODEL_PATH: the versions, shared by replicas) and /var/lib/oncall/data
# (ONCALL_DATA_DIR: the default SQLite store and this replica's outbox journal). The health check asks
# /readyz on ONCALL_PORT. PYTHON_IMAGE may name any Debian-based image whose python3 is 3.11 or newer, the
# same for both stages; BUILD_PACKAGES is what that image lacks to compile the extension (CI builds FROM
# a Debian image of its own, so it adds python3-dev: .ci/image-smoke).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG BUILD_PACKAGES="gcc libc6-dev"
# The compiler only: whatever Debian's bookworm has today (it only builds the extension).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${BUILD_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md NOTICE ./
COPY engine ./engine
COPY training ./training
COPY bot ./bot
# A venv, the wheel built with its pip, then the wheel and its dependencies (from PyPI) installed into the
# venv, which the runtime stage copies.
RUN python3 -m venv /opt/oncall \
    && /opt/oncall/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/oncall/bin/pip install --no-cache-dir /wheels/oncall_agent-*.whl \
    && /opt/oncall/bin/python -I -c "import engine._native"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 oncall \
    && useradd --system --uid 10001 --gid oncall --home-dir /var/lib/oncall --shell /usr/sbin/nologin oncall \
    && mkdir -p /var/lib/oncall/models /var/lib/oncall/data \
    && chown -R oncall:oncall /var/lib/oncall
COPY --from=build /opt/oncall /opt/oncall
ENV PATH=/opt/oncall/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ML_MODEL_PATH=/var/lib/oncall/models \
    ONCALL_DATA_DIR=/var/lib/oncall/data \
    ONCALL_PORT=3000
WORKDIR /var/lib/oncall
VOLUME ["/var/lib/oncall/models", "/var/lib/oncall/data"]
USER 10001:10001
EXPOSE 3000
# Healthy once the models are loaded (/readyz is 503 before); python, since the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('ONCALL_PORT', '3000'), timeout=4)"]
ENTRYPOINT ["oncall"]
# All interfaces: inside a container the loopback address is unreachable from anywhere else.
CMD ["serve", "--host", "0.0.0.0"]
