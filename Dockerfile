# CertPanel: one image for web (gunicorn), worker and beat (celery). See docker-compose.yml.

# Stage 1: pick the project's own files out of the build context, so that nothing else in the
# work tree (.env with secrets, .venv, data/, .git) can end up in the image.
# The translations are compiled here too (msgfmt, as `manage.py compilemessages` does): .mo files
# are not in the repository.
FROM python:3.11-slim AS source
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
COPY . /context
RUN set -eu; mkdir /app; cd /context; \
    cp -a manage.py requirements.txt panel certs templates /app/; \
    for optional in static locale; do \
        if [ -d "$optional" ]; then cp -a "$optional" /app/; else mkdir "/app/$optional"; fi; \
    done; \
    find /app -name '__pycache__' -prune -exec rm -rf {} +; \
    find /app/locale -name '*.po' -exec sh -ec 'for po; do msgfmt --check-format -o "${po%.po}.mo" "$po"; done' sh {} +

# Stage 2: the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# nginx: the panel runs `nginx -t` (and, in compose, the reload) itself, and checks NGINX_BIN at
# start-up in every process. Keep its major version close to the nginx:stable the sites run on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log

# Non-root: uid 10001, the same uid the nginx service runs as in docker-compose.yml. The
# directories below are the mount points of the compose volumes; a new named volume takes their
# owner from here.
RUN groupadd --system --gid 10001 certpanel \
    && useradd --system --uid 10001 --gid certpanel --home-dir /var/lib/certpanel \
        --shell /usr/sbin/nologin certpanel \
    && install -d -o certpanel -g certpanel -m 0750 /var/lib/certpanel \
    && install -d -o certpanel -g certpanel -m 0755 \
        /srv/certpanel/vhosts /srv/certpanel/acme-challenge /srv/certpanel/www \
        /run/certpanel-nginx \
    && install -d -o certpanel -g certpanel -m 0750 /srv/certpanel/certs

WORKDIR /app
COPY --from=source /app/requirements.txt /app/requirements.txt
RUN pip install -r requirements.txt
COPY --from=source /app /app

USER certpanel
ENV CERTPANEL_DATA_DIR=/var/lib/certpanel
EXPOSE 8000
CMD ["gunicorn", "panel.wsgi:application", "-b", "0.0.0.0:8000"]
