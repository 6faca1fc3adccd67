"""Django settings, all from the environment (and an optional .env file).

See README.md, "Configuration", for every variable. Values are validated here, at
start-up, and every problem is reported at once.
"""

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from panel.toolkit.config import LISTEN_FAMILIES, LOOPBACK, Env, ipv6_available

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_dotenv(path):
    # Development convenience: KEY=VALUE lines; the real environment wins.
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def _local_upstream(value):
    """A loopback host:port, or unix:/absolute/path."""
    if value.startswith("unix:/"):
        return True
    host, _, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return port.isdigit() and 0 < int(port) < 65536 and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False


_load_dotenv(BASE_DIR / ".env")
env = Env()

# Production (scripts/install): the user the web process, the ACME worker and beat run as; `runpanel
# --production` started as root starts them as this user and only the deploy worker as root.
SERVICE_USER = env.str("CERTPANEL_SERVICE_USER")
# There only the deploy side (root) writes nginx's vhosts and the certificate files; for the
# others those directories need only exist.
DEPLOY_SIDE = not SERVICE_USER or os.geteuid() == 0
DATA_DIR = env.directory("CERTPANEL_DATA_DIR", BASE_DIR / "data", create=DEPLOY_SIDE)
# What the panel's processes write for themselves (beat's schedule, the CA trust bundle): installed,
# a directory of the panel's user inside root's data directory.
STATE_DIR = env.directory("CERTPANEL_STATE_DIR", DATA_DIR)
DEBUG = env.bool("CERTPANEL_DEBUG", False)
SECRET_KEY_FILE = DATA_DIR / "django-secret.key"  # when CERTPANEL_SECRET_KEY is not set
SECRET_KEY = env.secret_from_file("CERTPANEL_SECRET_KEY", SECRET_KEY_FILE)
ENCRYPTION_KEYS = env.str("CERTPANEL_ENCRYPTION_KEYS")  # comma-separated Fernet keys, newest first
ENCRYPTION_KEY_FILE = DATA_DIR / "encryption.keys"
ALLOWED_HOSTS = [h.strip() for h in env.str("CERTPANEL_ALLOWED_HOSTS", "*").split(",")]
CSRF_TRUSTED_ORIGINS = [o for o in env.str("CERTPANEL_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Reverse proxies in front of the panel: only their X-Forwarded-For is believed (audit log and lockout addresses).
TRUSTED_PROXIES = env.network_list("CERTPANEL_TRUSTED_PROXIES")


# --- database: SQLite (WAL) in the data directory unless DATABASE_URL says otherwise
DATABASE_URL = env.url(
    "DATABASE_URL", f"sqlite:///{DATA_DIR / 'panel.sqlite3'}", schemes=("sqlite", "postgres", "postgresql")
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and short-lived locks. The launcher starts a private one
# on this socket when REDIS_URL is not set.
REDIS_URL = env.url("REDIS_URL", f"unix://{DATA_DIR / 'redis' / 'redis.sock'}", schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL.startswith("unix://") else REDIS_URL
# A task whose worker died unacknowledged goes to another worker after this long;
# workers look for such tasks every few seconds (kombu's default is ~100 s).
TASK_VISIBILITY_TIMEOUT = env.int("CERTPANEL_TASK_VISIBILITY_TIMEOUT", 300, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(TASK_VISIBILITY_TIMEOUT, 30)),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a worker's database connection across tasks (Celery closes it after each by
# default): a fresh connection per order step was a third of a step's own time.
CELERY_DB_REUSE_MAX = 200
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
# The modules of Celery entry points, imported by every worker (a list, not discovery).
CELERY_IMPORTS = ("certs.tasks", "panel.deployment.tasks", "panel.maintenance.tasks")
CELERY_TASK_ROUTES = {
    # Install targets are files and commands on the machine that serves the sites.
    "certs.tasks.install_certificate": {"queue": "deploy"},
    "certs.tasks.*": {"queue": "acme"},
    "panel.tasks.*": {"queue": "deploy"},
}
RENEWAL_SWEEP_SECONDS = env.float("CERTPANEL_RENEWAL_SWEEP_SECONDS", 300.0, minimum=1.0)
RENEWAL_SWEEP_LIMIT = env.int("CERTPANEL_RENEWAL_SWEEP_LIMIT", 500, minimum=1)  # orders started per sweep
RENEWAL_MIN_AGE_SECONDS = env.int("CERTPANEL_RENEWAL_MIN_AGE_SECONDS", 3600, minimum=0)  # see certs.renewal.policy.due
RENEWAL_RETRY_SECONDS = env.int("CERTPANEL_RENEWAL_RETRY_SECONDS", 3600, minimum=1)  # first back-off
ORDER_MAX_RETRIES = env.int("CERTPANEL_ORDER_MAX_RETRIES", 8, minimum=0)  # transient errors within one order
# A worker running an order step holds the order this long (renewed while it polls the CA);
# after a worker dies, another takes the order over once the claim has lapsed.
ORDER_CLAIM_SECONDS = env.int("CERTPANEL_ORDER_CLAIM_SECONDS", 45, minimum=1)
# Beat re-queues orders whose next step is this many seconds overdue (its task was lost,
# e.g. with a Redis that restarted), looking this often.
ORDER_STALL_SECONDS = env.float("CERTPANEL_ORDER_STALL_SECONDS", 60.0, minimum=1.0)
# Alert on certificates that expire within this many days and have not been renewed.
EXPIRY_ALERT_DAYS = env.int("CERTPANEL_EXPIRY_ALERT_DAYS", 14, minimum=1)
TEST_CLOCK_FILE = env.str("CERTPANEL_TEST_CLOCK_FILE")  # tests only: see panel/toolkit/clock.py
CELERY_BEAT_SCHEDULE = {
    "resume-stalled-orders": {"task": "certs.tasks.resume_stalled_orders", "schedule": ORDER_STALL_SECONDS},
    "resume-stalled-applies": {"task": "panel.tasks.resume_stalled_applies", "schedule": ORDER_STALL_SECONDS},
    "check-served-certificates": {"task": "panel.tasks.check_served_certificates", "schedule": 300.0},
    "resume-stalled-installs": {"task": "certs.tasks.resume_stalled_installs", "schedule": ORDER_STALL_SECONDS},
    "renewal-sweep": {"task": "certs.tasks.renewal_sweep", "schedule": RENEWAL_SWEEP_SECONDS},
    "ari-recheck": {"task": "certs.tasks.ari_recheck", "schedule": RENEWAL_SWEEP_SECONDS},
    "expiry-alerts": {"task": "certs.tasks.expiry_alerts", "schedule": 24 * 3600.0},
    # /healthz calls a queue's workers stale when their last beat is older than HEARTBEAT_STALE_SECONDS.
    **{f"worker-heartbeat-{queue}": {"task": "panel.tasks.worker_heartbeat", "schedule": 30.0, "args": (queue,),
                                      "options": {"queue": queue, "expires": 30.0}}
       for queue in ("acme", "deploy")},
}
HEARTBEAT_STALE_SECONDS = env.float("CERTPANEL_HEARTBEAT_STALE_SECONDS", 150.0, minimum=1.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(STATE_DIR / "celerybeat-schedule")
# A daily backup (panel/maintenance/backup.py) into this directory, the KEEP newest kept; empty: none.
BACKUP_DIR = env.directory("CERTPANEL_BACKUP_DIR", "", create=DEPLOY_SIDE) if env.str("CERTPANEL_BACKUP_DIR") else None
BACKUP_KEEP = env.int("CERTPANEL_BACKUP_KEEP", 7, minimum=1)
BACKUP_PASSPHRASE_FILE = env.existing_file("CERTPANEL_BACKUP_PASSPHRASE_FILE")  # its first line
BACKUP_HOUR = env.int("CERTPANEL_BACKUP_HOUR", 3, minimum=0, maximum=23)  # UTC
if BACKUP_DIR and not env.str("CERTPANEL_BACKUP_PASSPHRASE_FILE"):
    env.problems.append("CERTPANEL_BACKUP_DIR is set but CERTPANEL_BACKUP_PASSPHRASE_FILE is not: name a 0600 file "
                        "whose first line is the passphrase that seals the backups")
if BACKUP_DIR:
    CELERY_BEAT_SCHEDULE["daily-backup"] = {"task": "panel.tasks.scheduled_backup",
                                            "schedule": crontab(hour=BACKUP_HOUR, minute=17)}

# --- nginx. Without NGINX_CONF the panel runs its own nginx under the data directory.
NGINX_BIN = env.executable("NGINX_BIN", "nginx" if os.environ.get("PATH") else "/usr/sbin/nginx")
NGINX_PRIVATE = env.str("NGINX_CONF") is None
NGINX_PREFIX = DATA_DIR / "nginx"
NGINX_CONF = Path(env.str("NGINX_CONF", str(NGINX_PREFIX / "nginx.conf")))
NGINX_VHOST_DIR = env.directory("NGINX_VHOST_DIR", NGINX_PREFIX / "sites", create=DEPLOY_SIDE)
NGINX_HTTP_PORT = env.port("NGINX_HTTP_PORT", 8080 if NGINX_PRIVATE else 80)
NGINX_HTTPS_PORT = env.port("NGINX_HTTPS_PORT", 8443 if NGINX_PRIVATE else 443)
# The vhosts listen on IPv4 and IPv6 (both), or one of them; by default both where the host has IPv6.
NGINX_LISTEN_FAMILIES = env.choice("NGINX_LISTEN_FAMILIES", "both" if ipv6_available() else "ipv4", LISTEN_FAMILIES)
# ... on these addresses (comma-separated, exactly these), or else on every address of each family;
# the private nginx is for development and tests: loopback unless told otherwise.
_families = LISTEN_FAMILIES[NGINX_LISTEN_FAMILIES]
NGINX_LISTEN_ADDRESS = env.listen_addresses(
    "NGINX_LISTEN_ADDRESS", NGINX_LISTEN_FAMILIES, "NGINX_LISTEN_FAMILIES",
    default=",".join(LOOPBACK[family] for family in _families) if NGINX_PRIVATE else "")
if 6 in _families and not ipv6_available():
    env.problems.append(f"NGINX_LISTEN_FAMILIES={NGINX_LISTEN_FAMILIES}: this host has no IPv6; set it to ipv4")
# A deploy reloads nginx at once unless a reload is in flight; those that come while one is share
# one follow-up when it ends. A reload is in flight for its measured cost (how long nginx took to
# parse the whole configuration), never less than this many seconds ...
NGINX_RELOAD_COALESCE_SECONDS = env.float("NGINX_RELOAD_COALESCE_SECONDS", 0.05)
# ... and while reloads keep coming (a bulk issuance), x4 per reload up to this, or the cost if longer
# (panel/deployment/nginx/apply.py).
NGINX_RELOAD_COALESCE_MAX_SECONDS = env.float("NGINX_RELOAD_COALESCE_MAX_SECONDS", 8.0)
# The DNS servers nginx asks for upstream host names, per request (comma-separated IP or IP:port,
# [IPv6]:port); unset: the nameservers of /etc/resolv.conf when a config is written
# (panel/deployment/nginx/upstream_names.py).
NGINX_RESOLVERS = env.ip_list("CERTPANEL_NGINX_RESOLVERS")
if not NGINX_PRIVATE and not NGINX_CONF.is_file():
    env.problems.append(f"NGINX_CONF={NGINX_CONF}: no such file")

ACME_CHALLENGE_DIR = env.directory("CERTPANEL_CHALLENGE_DIR", DATA_DIR / "acme-challenge")
CERT_DEPLOY_DIR = env.directory("CERTPANEL_CERT_DIR", DATA_DIR / "certs", create=DEPLOY_SIDE)
# Each HTTPS site's served certificate is one file in CERT_DEPLOY_DIR/served (key and full chain)
# that nginx's workers read at each handshake: a renewal replaces it and needs no reload
# (panel/deployment/nginx/apply.py). The workers' group may read it: the system nginx's workers
# run as www-data, the private nginx's as the panel's user (group "": the writer's alone).
NGINX_WORKER_GROUP = env.str("NGINX_WORKER_GROUP", "" if NGINX_PRIVATE else "www-data")
# The panel's default servers hold every site's TLS context, unless the installer kept nginx's own
# default site (CERTPANEL_KEEP_NGINX_CONFIG): then each site's server block holds its own.
NGINX_SHARED_TLS = NGINX_PRIVATE or not env.bool("CERTPANEL_KEEP_NGINX_CONFIG", False)
# Where the system nginx's master reports a reload it refused (the private one logs in its prefix).
NGINX_ERROR_LOG = Path(env.str("NGINX_ERROR_LOG", "/var/log/nginx/error.log"))
# Every user has a home below this, <HOME_ROOT>/<username>/ (panel/security/homes.py): their document
# roots (by default <home>/<domain>/) and install paths lie in it, or in a directory an administrator granted them.
HOME_ROOT = env.directory("CERTPANEL_HOME_ROOT", DATA_DIR / "home")
# Administrators may place document roots anywhere; they grant users directories below these (comma-separated).
ALLOWED_ROOTS = env.path_list("CERTPANEL_ALLOWED_ROOTS", [DATA_DIR / "www", "/var/www", "/srv/www"])
# Install targets (panel/deployment/install_targets.py) of administrators write certificate files only below these
# (comma-separated) or in their home; users may be granted directories below them. The directories must exist.
INSTALL_ROOTS = env.path_list("CERTPANEL_INSTALL_ROOTS", [DATA_DIR / "install"])
# The reload presets the root deploy worker of the installed split may run as root (panel/toolkit/privilege.py
# says the format; root-owned, writable by root alone); every other preset runs as SERVICE_USER. Unset: none.
ROOT_COMMANDS_FILE = env.str("CERTPANEL_ROOT_COMMANDS_FILE")
# Certificates for servers the panel does not manage (certs/challenges/external.py, admins only):
# http-01-webroot writes tokens only under these document roots ...
WEBROOT_ROOTS = env.path_list("CERTPANEL_WEBROOT_ROOTS", ["/var/www", "/srv/www"])
# ... http-01-nginx / -apache add the challenge only to configs below these ...
EXTERNAL_CONFIG_ROOTS = env.path_list("CERTPANEL_EXTERNAL_CONFIG_ROOTS", ["/etc/nginx", "/etc/apache2", "/etc/httpd"])
# ... and http-01-standalone listens here while the CA validates (the CA always asks port 80;
# another port only behind a port forward, or for a test CA). Empty address: every IPv4 and IPv6 address.
STANDALONE_PORT = env.port("CERTPANEL_STANDALONE_PORT", 80)
STANDALONE_ADDRESS = env.str("CERTPANEL_STANDALONE_ADDRESS", "")
# How long the standalone server stays up waiting for the CA's verdict.
STANDALONE_VALIDATION_SECONDS = env.float("CERTPANEL_STANDALONE_VALIDATION_SECONDS", 60.0)
# http-01-nginx / -apache add the challenge to the server blocks listening on this port (the
# CA asks port 80; another only behind a port forward, or for a test CA) ...
EXTERNAL_HTTP_PORT = env.port("CERTPANEL_EXTERNAL_HTTP_PORT", 80)
# ... through a snippet (and, for Apache, token files) kept here: that server's workers must be
# able to read it.
EXTERNAL_CHALLENGE_DIR = env.directory("CERTPANEL_EXTERNAL_CHALLENGE_DIR", DATA_DIR / "external-challenges")

# --- ACME
CA_BUNDLE = env.existing_file("CERTPANEL_CA_BUNDLE")  # extra trust anchors for private or test CAs
# CAs offered to every user beside the public ones (certs/cas.py): an internal CA, a CA you have a
# contract with. Users may register only with listed CAs; administrators with any directory URL.
EXTRA_CAS = env.named_urls("CERTPANEL_EXTRA_CAS", schemes=("https",))
DNS_RESOLVERS = env.ip_list("CERTPANEL_DNS_RESOLVERS")
ACME_NETWORK_TIMEOUT = env.int("CERTPANEL_ACME_TIMEOUT", 30, minimum=1)
# How long a step polls the CA inline before it frees the worker and reschedules.
ACME_INLINE_POLL_SECONDS = env.float("CERTPANEL_ACME_INLINE_POLL_SECONDS", 3.0)

# --- the panel's own HTTPS (panel/deployment/nginx/panel_vhost.py): nginx serves the panel on this
# port over TLS and proxies to gunicorn at PANEL_UPSTREAM. 0 (the `make run` default): off, the
# panel is plain HTTP on loopback.
PANEL_PORT = env.int("CERTPANEL_PANEL_PORT", 0, minimum=0, maximum=65535)
# Where gunicorn listens: a loopback address:port or unix:/path. Only loopback or a socket, because
# the panel believes the X-Forwarded-Proto / -For that reach it (below): only nginx can send them.
PANEL_UPSTREAM = env.str("CERTPANEL_PANEL_UPSTREAM", "127.0.0.1:8001")
if PANEL_PORT and not _local_upstream(PANEL_UPSTREAM):
    env.problems.append(f"CERTPANEL_PANEL_UPSTREAM={PANEL_UPSTREAM!r}: expected a loopback address:port "
                        "(127.0.0.1:8000, [::1]:8000) or unix:/absolute/path")
# The panel's domain when none was set yet (the page and `manage.py panel_domain` set it later).
PANEL_DOMAIN = env.str("CERTPANEL_PANEL_DOMAIN", "")
# BT-style "security entrance" (panel/security/entrance.py): a secret first path segment an
# anonymous visitor must come through before the login page (or any page) answers.
SECURITY_ENTRANCE = env.str("CERTPANEL_SECURITY_ENTRANCE", "")
if SECURITY_ENTRANCE and not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", SECURITY_ENTRANCE):
    env.problems.append("CERTPANEL_SECURITY_ENTRANCE: expected 8 to 64 letters, digits, - or _")

# --- login security (panel/security/login_views.py, panel/security/twofactor.py)
# Browsers send Secure cookies over HTTPS only: on when the panel is served over HTTPS (directly,
# on its own port, or behind a TLS proxy), off by default because `make run` serves plain HTTP on loopback.
SECURE_COOKIES = env.bool("CERTPANEL_SECURE_COOKIES", bool(PANEL_PORT))
if PANEL_PORT:
    # gunicorn listens on loopback or a UNIX socket only (checked above), so whatever reaches it
    # came through the local nginx, which sets X-Forwarded-Proto itself: safe to believe. Django
    # then sees HTTPS, and its CSRF check accepts the Origin https://<host>:<port> without
    # CSRF_TRUSTED_ORIGINS (nginx passes the Host header as the browser sent it, port included).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # ... and its X-Forwarded-For (the audit log's and the lockout's address), unless told otherwise.
    TRUSTED_PROXIES = TRUSTED_PROXIES or [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
# Strict-Transport-Security on the panel's pages when served over HTTPS (browsers ignore it over a
# certificate they do not trust, i.e. until the panel has its domain's certificate). Not for
# subdomains unless asked: they may be other people's sites.
SECURE_HSTS_SECONDS = env.int("CERTPANEL_HSTS_SECONDS", 31536000 if PANEL_PORT else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("CERTPANEL_HSTS_SUBDOMAINS", False)
SESSION_COOKIE_AGE = env.int("CERTPANEL_SESSION_SECONDS", 12 * 3600, minimum=60)  # a login lasts this long
LOGIN_FAILURE_LIMIT = env.int("CERTPANEL_LOGIN_FAILURE_LIMIT", 6, minimum=1)
LOGIN_LOCKOUT_MINUTES = env.int("CERTPANEL_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)

env.check()

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "panel",
    "certs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "panel.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything else answers an anonymous visitor (CERTPANEL_SECURITY_ENTRANCE).
    "panel.security.entrance.SecurityEntranceMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "panel.security.twofactor.TwoFactorMiddleware",
    "panel.security.audit.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "panel.toolkit.task_queue.QueueUnavailableMiddleware",
    # Last: turns a login refused for lockout into the login page saying so (panel.security.login_views.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "panel.urls"
WSGI_APPLICATION = "panel.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "panel.toolkit.navigation.navigation",
            ],
        },
    },
]

# Shared between web and workers: reload coalescing and short locks.
# KEY_PREFIX: panels (or test processes) sharing one Redis database keep apart.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": env.str("CERTPANEL_CACHE_KEY_PREFIX", "")}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "ui:dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True  # no script reads them: htmx takes the token from the page
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES

# django-axes watches the session login (the API's tokens are not a login form). Wrong passwords
# (and wrong second-step codes) for a username from one client address count until the cool-off
# passes without one; the Nth locks that username at that address, so a stranger cannot lock
# anyone else out. Tries during the lock do not extend it (so the page can say when it ends); each
# consecutive lockout of the pair lasts twice as long (panel.security.lockout).
# The address is the audit log's: X-Forwarded-For only from CERTPANEL_TRUSTED_PROXIES, otherwise
# a client could name a new address for every try.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = "panel.security.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "panel.security.audit.client_address"
# Lockouts are remembered (AccessFailureLog) to lengthen the next; each attempt expires after its
# own pair's cool-off, not after the cool-off of whichever request happens to clean up.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "panel.security.login_views.lockout_response"
# Never stored with a failed attempt: codes of the second step, the form's CSRF token.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code", "csrfmiddlewaretoken"]
AXES_VERBOSE = False  # no start-up banner on every manage.py command and worker

OTP_TOTP_ISSUER = "CertPanel"  # the name authenticator apps show next to the account
# Set by SecurityMiddleware and XFrameOptionsMiddleware; written out so a reader sees the policy.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The panel serves its own (vendored) assets, straight from static/: no CDN, no collectstatic step.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "panel.security.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "panel.security.tokens.TokenScope"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "panel.toolkit.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CertPanel API",
    "DESCRIPTION": "Sites on nginx with ACME certificates.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # write-only fields (secrets) only in request bodies
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "panel.openapi.document_error_responses"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # The acme package logs JWS payloads (CSRs, EAB) at DEBUG; never let them out.
        "acme": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # The OCI SDK (a lexicon provider's) announces its circuit breaker at import, on every command.
        "oci": {"level": "WARNING"},
    },
}
