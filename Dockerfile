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

# The settings create DATA_DIR at import and beat keeps its schedule there, so the
# unprivileged user must own it.
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /app/var \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
