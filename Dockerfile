# ACIR retrieval service: CPU-only image, non-root user, healthcheck.
# Build:  docker build -t acir .
# Run:    docker run -p 8000:8000 acir        (SQLite inside the container's volume)
FROM python:3.11-slim

# PyPI's default torch wheel for Linux is the multi-GB CUDA build; the CPU wheel index keeps the
# image small. Override to use a mirror.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ACIR_DATABASE_URL=sqlite:////var/lib/acir/acir.db \
    ACIR_INDEX_DIR=/var/lib/acir/index \
    ACIR_CHECKPOINT=/srv/acir/checkpoints/acir-compact-64.pt \
    NUMBA_CACHE_DIR=/var/lib/acir/numba-cache

RUN groupadd --system acir && useradd --system --gid acir --home-dir /srv/acir acir \
    && mkdir -p /srv/acir /var/lib/acir && chown acir:acir /var/lib/acir

WORKDIR /srv/acir
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY models models
COPY index index
COPY migrations migrations
COPY checkpoints/acir-compact-64.pt checkpoints/acir-compact-64.pt

# Editable install: `acir db upgrade` finds migrations/ beside the packages.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
    && pip install -e .

USER acir
VOLUME ["/var/lib/acir"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

# Migrations run before the server starts (never inside it); compose runs them as a one-shot step.
CMD ["sh", "-c", "acir db upgrade && exec acir serve --host 0.0.0.0 --port 8000"]
