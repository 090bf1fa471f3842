FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/var

WORKDIR /app

# Sites and shifts are expanded in their IANA zones; slim Debian images do not reliably ship
# the zone database, and without it America/Chicago fails to load.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so editing the code does not reinstall them on every build.
COPY requirements.in requirements.lock ./
RUN pip install -r requirements.in -c requirements.lock

COPY . .
# The developer tools (demo data, benchmarks) and the tests are not part of the product; the
# local stack in docker-compose.yml builds with them to seed its demo clinic.
ARG WITH_DEVTOOLS=false
RUN if [ "$WITH_DEVTOOLS" != "true" ]; then rm -rf devtools tests; fi
# Static files are gathered at build time and served by the app (WhiteNoise); the key is only
# for this build step, the running container must be given its own.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput >/dev/null

# The settings create DATA_DIR at import and beat keeps its schedule there, so the
# unprivileged user must own it.
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /app/var /app/var/prometheus \
    && chown -R app:app /app/var
USER app
ENV HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus

EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
