# syntax=docker/dockerfile:1
# Callintel application image: the API (default CMD), Celery workers, beat, flower and the
# `callintel` CLI all run from this one image; docker-compose.yml picks the command per service.
FROM python:3.11-slim

# The local speech/analysis models ship inside pip packages: never reach for a model hub at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HF_HUB_OFFLINE=1

# No apt packages: PyAV wheels bundle ffmpeg, and the healthcheck uses Python's urllib (no curl).
RUN groupadd --system --gid 10001 callintel \
    && useradd --system --uid 10001 --gid callintel --home-dir /app --shell /usr/sbin/nologin callintel

WORKDIR /app
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[local]" \
    && mkdir -p /app/var \
    && chown callintel:callintel /app/var

USER callintel
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "120", "api:create_app()"]
