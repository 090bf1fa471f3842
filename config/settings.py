"""Settings, read from the environment.

Embedded defaults (SQLite, a filesystem broker) make the product run with no servers;
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# pytest sets PYTEST_VERSION for the whole run; nothing else should.
TESTING = "PYTEST_VERSION" in os.environ
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        # A key made up per process signs sessions one worker cannot read in another, and
        # changes at every restart: production must not start that way.
        raise ImproperlyConfigured("SECRET_KEY is not set. Set it (e.g. from a secret store) or run with DEBUG=true.")
    SECRET_KEY = secrets.token_urlsafe(50)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "outbox",
    "rooms",
    "staff",
    "patients",
    "scheduling",
    "procedure_day",
    "api",
    "interop",
    "planner",
    "web",
    "ops",
    # The htmx script, served from the project's static files.
    "django_htmx",
]
# Developer tools (demo data, benchmarks) are installed where their folder is: in a checkout,
# not in the production image.
if importlib.util.find_spec("devtools") is not None and env_bool("DEVTOOLS", True):
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.BodyLimitMiddleware",
    "core.middleware.DatabaseDeadlineMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.SessionUserMiddleware",
    "core.middleware.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.ConditionalReadMiddleware",
    "api.middleware.CreatedLocationMiddleware",
    "api.middleware.DeprecationMiddleware",
    "api.middleware.QueryParametersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.header",
            ],
        },
    },
]


def prepare_threshold() -> int | None:
    text = os.environ.get("DB_PREPARE_THRESHOLD", "5").strip().lower()
    if text in ("off", "none", "0", ""):
        return None
    if not text.isdigit():
        raise ImproperlyConfigured("DB_PREPARE_THRESHOLD is a whole number of runs, or off.")
    return int(text)


def database_config() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "clinic.sqlite3")}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Writers queue for SQLite's single write lock (core.dbbackends.sqlite3).
        config["ENGINE"] = "core.dbbackends.sqlite3"
        # IMMEDIATE takes the write lock at BEGIN, so a check-then-insert inside atomic()
        # cannot interleave with another writer; DEFERRED fails raced writes with
        # "database is locked" regardless of the timeout.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            # How long a writer waits for the lock: long enough for a queue of bookings (a few
            # ms each), short enough that a stuck writer gives a 503 rather than a hang.
            "timeout": int(os.environ.get("SQLITE_BUSY_TIMEOUT", "10")),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not shared-cache memory, so concurrency tests see real SQLite locking.
        config["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = "core.dbbackends.postgresql"
        options = config.setdefault("OPTIONS", {})
        options.update(
            {
                # A server that does not answer the handshake in time is down for this request.
                "connect_timeout": int(os.environ.get("DB_CONNECT_TIMEOUT", "2")),
                # Dead peers on a quiet connection are noticed in under a minute.
                "keepalives": 1,
                "keepalives_idle": 20,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 20000,
                # A runaway statement is stopped by the server itself.
                "options": f"-c statement_timeout={int(os.environ.get('DB_STATEMENT_TIMEOUT_MS', '30000'))}",
                # Parameters bound by the server, and a statement run this many times on a
                # connection prepared there (parsed and planned once, its plan reused). Set
                # DB_PREPARE_THRESHOLD=off behind a pooler that cannot keep prepared statements.
                "server_side_binding": env_bool("DB_SERVER_SIDE_BINDING", True),
                "prepare_threshold": prepare_threshold(),
            }
        )
    return config


DATABASES = {"default": database_config()}
# Web requests only: each database round trip may take this long before its connection is shut
# and the request answers 503 (core.dbtimeout). The health check of a reused connection gets less.
DB_QUERY_TIMEOUT_SECONDS = float(os.environ.get("DB_QUERY_TIMEOUT_SECONDS", "3"))
DB_HEALTH_CHECK_SECONDS = float(os.environ.get("DB_HEALTH_CHECK_SECONDS", "1"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The zone the API gives instants in for what belongs to no one site (a lab result, a key);
# empty means the first site's zone.
CLINIC_TIME_ZONE = os.environ.get("CLINIC_TIME_ZONE", "")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# In development the files come straight from the apps; production serves what collectstatic gathered.
WHITENOISE_USE_FINDERS = DEBUG or TESTING

SESSION_COOKIE_HTTPONLY = True
# A sign-in lasts a working day at most, and ends when the browser closes (shared workstations).
SESSION_COOKIE_AGE = 60 * 60 * 8
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and "DATABASE_URL" in os.environ)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Transport security. Production terminates TLS (here or at a proxy) and sets SECURE_SSL_REDIRECT;
# the embedded demo is plain http on loopback, where browsers ignore HSTS anyway.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Everything is served from the project itself; nothing loads from another origin. The admin's
# templates still carry style attributes, hence inline styles (never inline scripts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Addresses (or networks) of our own reverse proxies: only from them is X-Forwarded-For believed.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
# Request bodies are small JSON documents; anything larger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

REDIS_URL = os.environ.get("REDIS_URL", "").strip()

CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "").strip()
if not CACHE_KEY_PREFIX:
    CACHE_KEY_PREFIX = "clinic"
    if TESTING:
        # Each test run keeps its own keys in a shared Redis (and servers it starts inherit them).
        CACHE_KEY_PREFIX = os.environ["CACHE_KEY_PREFIX"] = f"clinic-test-{os.getpid()}"
# One cache that every worker process shares: Redis when configured, the database otherwise.
# Sign-in throttles use Redis through it, or their own table (core.throttle) without Redis.
_DB_CACHE = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "core_cache"}
_SHARED_CACHE: dict[str, Any] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else _DB_CACHE
)
CACHES = {"default": _SHARED_CACHE, "throttle": _SHARED_CACHE}
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or REDIS_URL or "filesystem://"
BROKER_DIR = DATA_DIR / "broker"
if CELERY_BROKER_URL == "filesystem://":
    for sub in ("in", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is "control" in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
        # Redis hands an unacknowledged message to another worker after this long. Only the
        # send task acknowledges late, and it claims its row first, so a redelivery is a no-op.
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
# Early acknowledgement everywhere except the send task, which opts in: the periodic scans
# are cheap to lose (the next run catches up), a sent message is not cheap to repeat.
CELERY_TASK_ACKS_LATE = False
# One message at a time per worker process, so a crash strands at most the task in hand.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Publishing never waits for a broker that is down: the relay puts the row back and retries
# on its next run (celery#4296: a retried publish to a silent Redis blocks for minutes).
CELERY_TASK_PUBLISH_RETRY = False

# Holds and reminders; every number is a clinic default, edited through the environment.
HOLD_MINUTES = int(os.environ.get("HOLD_MINUTES", "10"))
PREP_REMINDER_HOURS = int(os.environ.get("PREP_REMINDER_HOURS", "48"))
# When a drug must be stopped, the preparation reminder goes at this site-local time on the day
# before the last dose, if that is earlier than PREP_REMINDER_HOURS before the case.
PREP_REMINDER_LOCAL_TIME = os.environ.get("PREP_REMINDER_LOCAL_TIME", "10:00")
DAY_BEFORE_REMINDER_HOURS = int(os.environ.get("DAY_BEFORE_REMINDER_HOURS", "24"))
DAILY_LIST_LOCAL_TIME = os.environ.get("DAILY_LIST_LOCAL_TIME", "06:00")
FOLLOW_UP_LIST_LOCAL_TIME = os.environ.get("FOLLOW_UP_LIST_LOCAL_TIME", "07:00")
# A work list enqueued later than this after its time is dropped: a list that arrives at noon
# is noise, and the API has the same data.
WORK_LIST_GRACE_MINUTES = int(os.environ.get("WORK_LIST_GRACE_MINUTES", "180"))

# The outbox relay.
OUTBOX_BATCH_SIZE = int(os.environ.get("OUTBOX_BATCH_SIZE", "200"))
OUTBOX_REQUEUE_AFTER_MINUTES = int(os.environ.get("OUTBOX_REQUEUE_AFTER_MINUTES", "10"))
OUTBOX_UNKNOWN_AFTER_MINUTES = int(os.environ.get("OUTBOX_UNKNOWN_AFTER_MINUTES", "15"))
# A send that certainly never left (the mail server refused the connection) is retried this long.
OUTBOX_RETRY_HOURS = int(os.environ.get("OUTBOX_RETRY_HOURS", "12"))

# Email through Django's backend (console for the demo); SMS behind outbox.sending.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "scheduling@localhost")
SMS_BACKEND = os.environ.get("SMS_BACKEND", "outbox.sending.LoggingSmsBackend")
SMS_FILE_PATH = os.environ.get("SMS_FILE_PATH", str(DATA_DIR / "sms"))
SMS_FILE_DELAY_SECONDS = float(os.environ.get("SMS_FILE_DELAY_SECONDS", "0"))

# Periodic scans. Short expiries: a scan that waited in the queue past its next run is
# superseded by that run.
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {"task": "outbox.tasks.relay_outbox", "schedule": 30.0, "options": {"expires": 25}},
    "deliver-changes": {"task": "interop.tasks.deliver_changes", "schedule": 10.0, "options": {"expires": 9}},
    "release-expired-holds": {
        "task": "scheduling.tasks.release_expired_holds",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "recovery-timers": {
        "task": "procedure_day.tasks.run_recovery_timers",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "recover-outbox": {"task": "outbox.tasks.recover_outbox", "schedule": 60.0, "options": {"expires": 55}},
    "work-lists": {"task": "scheduling.tasks.enqueue_work_lists", "schedule": 300.0, "options": {"expires": 290}},
    # Stored answers to Idempotency-Key requests hold patient data: kept 24 hours, no longer.
    "purge-idempotency-records": {
        "task": "core.tasks.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    "purge-throttle-counters": {
        "task": "core.tasks.purge_throttle_counters",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    # A plan asked for is solved within seconds of being queued; the solving is the worker's.
    "run-queued-plans": {"task": "planner.tasks.run_queued_plans", "schedule": 3.0, "options": {"expires": 3}},
    "purge-plans": {"task": "planner.tasks.purge_plans", "schedule": 600.0, "options": {"expires": 590}},
    "purge-delivered-changes": {
        "task": "interop.tasks.purge_delivered",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    "credential-warnings": {
        "task": "scheduling.tasks.enqueue_credential_warnings",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
}

# One JSON object per line, each with the request id and user id of the request that wrote it.
# Log lines carry ids, codes and paths, never patient data and never query strings.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logs.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "core.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's request logger repeats what the access line says, with less care for PHI.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "api.schema.ProblemAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["api.filters.FilterBackend"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
# Sign-in throttles: attempts per client address per window, and a lockout per username after
# repeated failures (whatever address they come from), on the token endpoint and sign-in pages.
LOGIN_THROTTLE_PATHS = {"/admin/login/", "/signin/"}
LOGIN_URL = "/signin/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/signin/"
# The address staff open the pages at, for links in email (the 06:00 work list).
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Webhook and HL7 deliveries: retries back off from the base, doubling up to the maximum; a
# webhook is given up after WEBHOOK_MAX_ATTEMPTS failures, an HL7 message after HL7_MAX_ATTEMPTS
# error acknowledgements; either after DELIVERY_GIVE_UP_HOURS of a receiver being unreachable.
DELIVERY_RETRY_BASE_SECONDS = int(os.environ.get("DELIVERY_RETRY_BASE_SECONDS", "10"))
DELIVERY_RETRY_MAX_SECONDS = int(os.environ.get("DELIVERY_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "10"))
HL7_MAX_ATTEMPTS = int(os.environ.get("HL7_MAX_ATTEMPTS", "5"))
DELIVERY_GIVE_UP_HOURS = int(os.environ.get("DELIVERY_GIVE_UP_HOURS", "24"))
DELIVERY_LEASE_SECONDS = 120
WEBHOOK_TIMEOUT_SECONDS = 10
# After a webhook's secret is rotated, the old one keeps signing beside the new for this long.
WEBHOOK_SECRET_GRACE_HOURS = int(os.environ.get("WEBHOOK_SECRET_GRACE_HOURS", "24"))
# Change events, their deliveries and the delivery log are kept this long once all are through.
DELIVERY_LOG_DAYS = int(os.environ.get("DELIVERY_LOG_DAYS", "30"))
# The day planner: its time budget per plan, how far a booked patient's time may move, how long
# a plan is kept for its owner to look at and apply.
PLAN_BUDGET_SECONDS = float(os.environ.get("PLAN_BUDGET_SECONDS", "10"))
PLAN_MAX_MOVE_MINUTES = int(os.environ.get("PLAN_MAX_MOVE_MINUTES", "30"))
PLAN_KEEP_MINUTES = int(os.environ.get("PLAN_KEEP_MINUTES", "60"))
# A sync client's next walk over changes starts this long before its last walk began: a change
# is stamped when written and seen when committed, and this covers the time in between.
SYNC_SETTLE_SECONDS = int(os.environ.get("SYNC_SETTLE_SECONDS", "60"))
# The identifier system of the clinic's MRNs in FHIR Patient.identifier.
FHIR_MRN_SYSTEM = os.environ.get("FHIR_MRN_SYSTEM", f"{PUBLIC_URL}/fhir/r4/NamingSystem/mrn")
# How often the day board and the patient flow refresh themselves (seconds).
BOARD_REFRESH_SECONDS = int(os.environ.get("BOARD_REFRESH_SECONDS", "30"))
LOGIN_THROTTLE_ATTEMPTS = int(os.environ.get("LOGIN_THROTTLE_ATTEMPTS", "10"))
LOGIN_THROTTLE_WINDOW_SECONDS = 60
LOGIN_LOCKOUT_ATTEMPTS = int(os.environ.get("LOGIN_LOCKOUT_ATTEMPTS", "5"))
LOGIN_LOCKOUT_WINDOW_SECONDS = 15 * 60
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", str(15 * 60)))
API_TOKEN_HOURS = int(os.environ.get("API_TOKEN_HOURS", "12"))
# A token unused this long is revoked at its next use.
API_TOKEN_IDLE_MINUTES = int(os.environ.get("API_TOKEN_IDLE_MINUTES", "60"))

# /metrics: open to loopback, or to anyone presenting this bearer token.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
PROMETHEUS_EXPORT_MIGRATIONS = False
# /readyz turns 503 when the oldest due notification has waited longer than this.
READY_OUTBOX_LAG_MINUTES = int(os.environ.get("READY_OUTBOX_LAG_MINUTES", "10"))

SPECTACULAR_SETTINGS = {
    "TITLE": "Fluoroscopy suite scheduling API",
    "DESCRIPTION": "Procedure scheduling and room/fluoroscopy booking for interventional pain clinics.",
    "VERSION": "1.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SECURITY": [{"bearerAuth": []}],
    "ENUM_NAME_OVERRIDES": {
        "SedationEnum": "scheduling.models.Sedation",
        "BookingStatusEnum": "scheduling.models.BookingStatus",
        "CapabilityEnum": "rooms.models.Capability",
        "EquipmentKindEnum": "rooms.models.EquipmentKind",
        "StaffRoleEnum": "staff.models.StaffRole",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.query_strings_need_a_value",
        "api.schema.links_from_what_was_made",
        "api.schema.patient_fields_by_role",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")
