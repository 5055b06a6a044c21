# syntax=docker/dockerfile:1
#
# LLM Provider Service image.
#
#   docker build -t llm-provider-service .
#   docker run -p 8080:8080 -e ANTHROPIC_API_KEY=... llm-provider-service          # HTTP API
#   docker run llm-provider-service python -m services.llm_provider_service worker  # queue worker
#
# Stage 1 installs the production dependencies, exactly as pinned (and hashed) in
# pdm.lock, into /opt/venv. Stage 2 gets that venv and the source, nothing else:
# no PDM, no compilers, no test or lint tools.

############################ builder ############################
FROM python:3.11-slim AS builder

# The PDM pin is the version the lock was checked against. unearth and hishel are
# capped because the newest releases break PDM (a plain `pip install pdm` fails).
ARG PDM_VERSION=2.29.3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PDM_CHECK_UPDATE=false \
    PDM_NON_INTERACTIVE=1

RUN pip install "pdm==${PDM_VERSION}" "unearth<0.19" "hishel[httpx]<2"

WORKDIR /build

# Only the files that decide the dependency set, so this layer (the slow one) is
# rebuilt when the lock changes, not on every source edit. README.md is the
# project's `readme`, which PDM reads with the metadata.
COPY pyproject.toml pdm.lock README.md ./

# --check: fail the build if pdm.lock is stale against pyproject.toml.
# --frozen-lockfile: never re-resolve; install what the lock says (hashes verified).
# --prod: no `test`/`lint` groups. --no-self: the project itself is not installed;
# its source is copied into the final stage and run from /app.
RUN python -m venv /opt/venv \
    && pdm use --first --no-version-file /opt/venv/bin/python \
    && pdm install --prod --check --frozen-lockfile --no-self \
    && /opt/venv/bin/python -c "import quart, hypercorn, pydantic_settings, redis, aiokafka"

############################ runtime ############################
# Same base as the builder: the venv's python symlinks to /usr/local/bin/python3.11.
FROM python:3.11-slim AS runtime

# Fixed ids, so volume permissions and Kubernetes `runAsUser` can rely on them.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app \
        --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

# Production refuses to start without callers: give it LLM_PROVIDER_SERVICE_CALLERS, or mount
# the callers' JSON as a secret file and set LLM_PROVIDER_SERVICE_CALLERS_FILE (security.md).
ENV ENVIRONMENT=production \
    LLM_PROVIDER_SERVICE_HOST=0.0.0.0 \
    LLM_PROVIDER_SERVICE_PORT=8080 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}"

WORKDIR /app

# The venv path is the same in both stages (venvs are not relocatable), and both
# stages use the same base image, so /opt/venv/bin/python resolves here too.
COPY --from=builder /opt/venv /opt/venv
# Source is owned by root and read-only for the service user.
COPY services/ /app/services/
COPY common_core/ /app/common_core/
# The project is not installed (--no-self), so its version is read from here
# (llm_provider_build_info, metrics.py `service_version`).
COPY pyproject.toml /app/pyproject.toml

# Byte-compile once at build time; the non-root user cannot write __pycache__.
RUN python -m compileall -q /app/services /app/common_core

USER 10001:10001

EXPOSE 8080

# slim has no curl: ask /livez with the standard library. /livez is 200 while the process
# and its event loop answer, and asks no dependency, so an outage of Redis, Kafka or a vendor
# never marks the container unhealthy (an orchestrator would restart it for nothing). For
# readiness (a load balancer, a Kubernetes readinessProbe) use /readyz; /healthz is the
# per-dependency report. Any error status makes open() raise, so the exit code is 1.
# Proxies are bypassed: an HTTP(S)_PROXY in the environment must not reroute it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; port = os.environ.get('LLM_PROVIDER_SERVICE_PORT', '8080'); opener = u.build_opener(u.ProxyHandler({})); sys.exit(0 if opener.open(f'http://127.0.0.1:{port}/livez', timeout=4).status == 200 else 1)"]

STOPSIGNAL SIGTERM

# Exec form: Python is PID 1 and receives SIGTERM itself (no shell in between).
CMD ["python", "-m", "services.llm_provider_service", "serve"]
