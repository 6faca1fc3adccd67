# Shared by scripts/install and scripts/upgrade: the installed layout and idempotent steps.
# Every step says what it changed; a run that changed nothing says so at the end.

changes=()

die() { echo "error: $*" >&2; exit 1; }
step() { printf '== %s\n' "$*"; }
changed() { changes+=("$*"); printf '   changed: %s\n' "$*"; }

set_layout() {  # set_layout PREFIX: where everything goes
    local root=${1%/}
    code_dir=$root/opt/certpanel
    config_dir=$root/etc/certpanel
    env_file=$config_dir/certpanel.env
    data_dir=$root/var/lib/certpanel
    run_dir=$root/run/certpanel
    nginx_dir=$root/etc/nginx
    vhost_dir=$nginx_dir/certpanel
    unit_dir=$root/etc/systemd/system
    current=$code_dir/current
}

resolve_settings() {  # the settings this run installs: the command line's ($opt), else stored, else defaults
    # Earlier choices are the defaults; the command line wins.
    declare -gA stored=()
    if [ -f "$env_file" ]; then
        # Split at the first "=" only: values end in "=" (Fernet keys) or hold one (EXTRA_CAS).
        while IFS= read -r line; do
            case "$line" in ''|\#*|[!A-Z]*) continue ;; esac
            stored[${line%%=*}]=${line#*=}
        done < "$env_file"
    fi
    setting() {  # setting KEY DEFAULT: the command line's value, else the stored one, else DEFAULT
        if [ -n "${opt[$1]+x}" ]; then echo "${opt[$1]}"; elif [ -n "${stored[$1]+x}" ]; then echo "${stored[$1]}"; else echo "$2"; fi
    }
    service_user=$(setting CERTPANEL_SERVICE_USER certpanel)
    panel_port=$(setting CERTPANEL_PANEL_PORT 8888)
    web_upstream=${stored[CERTPANEL_PANEL_UPSTREAM]:-127.0.0.1:8001}
    [ -z "${opt[web_port]+x}" ] || web_upstream="127.0.0.1:${opt[web_port]}"
    http_port=$(setting NGINX_HTTP_PORT 80)
    https_port=$(setting NGINX_HTTPS_PORT 443)
    listen_address=$(setting NGINX_LISTEN_ADDRESS "")
    listen_families=$(setting NGINX_LISTEN_FAMILIES both)
    database_url=$(setting DATABASE_URL "")
    redis_url=$(setting REDIS_URL "")
    keep_nginx=$(setting CERTPANEL_KEEP_NGINX_CONFIG "")
    nginx_conf=$(setting NGINX_CONF "$nginx_dir/nginx.conf")
    for port in "$panel_port" "$http_port" "$https_port" "${web_upstream##*:}"; do
        [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "not a port: $port"
    done
    [[ "$service_user" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "not a user name: $service_user"
    # certpanel.env is read by systemd and sourced by bin/certpanel: nothing a shell would act on.
    local value
    for value in "$database_url" "$redis_url" "$listen_address" "$listen_families" "$nginx_conf" "${extra_env[@]}"; do
        [[ "$value" =~ ^[^[:space:]\'\"\$\`\;\&\|\<\>\(\)\\]*$ ]] \
            || die "$value: spaces, quotes and the characters \$ \` ; & | < > ( ) \\ cannot go into certpanel.env"
    done
}

write_config() {  # certpanel.env (secrets generated once) and the backup passphrase
    secret_key=${stored[CERTPANEL_SECRET_KEY]:-$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))')}
    encryption_keys=${stored[CERTPANEL_ENCRYPTION_KEYS]:-$("$venv/bin/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')}
    # Without a URL: this machine's PostgreSQL (peer authentication) and a dedicated Redis.
    local_postgres_url="postgres://$service_user@/certpanel?host=/var/run/postgresql"
    local_redis_url="unix:///run/redis-certpanel/redis-server.sock"
    database_url=${database_url:-$local_postgres_url}
    redis_url=${redis_url:-$local_redis_url}
    local_postgres=false local_redis=false
    [ "$database_url" != "$local_postgres_url" ] || local_postgres=true
    [ "$redis_url" != "$local_redis_url" ] || local_redis=true
    render_env() {
        echo "# CertPanel's settings (README: Configuration). Written by scripts/install; kept across runs."
        echo "# Secrets: readable by root only. systemd units and bin/certpanel read this file."
        echo "CERTPANEL_SECRET_KEY=$secret_key"
        echo "CERTPANEL_ENCRYPTION_KEYS=$encryption_keys"
        echo "CERTPANEL_SERVICE_USER=$service_user"
        echo "CERTPANEL_DATA_DIR=$data_dir"
        echo "CERTPANEL_STATE_DIR=$data_dir/state"
        echo "CERTPANEL_CHALLENGE_DIR=$data_dir/acme-challenge"
        echo "CERTPANEL_CERT_DIR=$data_dir/certs"
        echo "CERTPANEL_HOME_ROOT=$data_dir/home"
        echo "CERTPANEL_INSTALL_ROOTS=$data_dir/install"
        echo "CERTPANEL_BACKUP_DIR=$data_dir/backups"
        echo "CERTPANEL_BACKUP_PASSPHRASE_FILE=$config_dir/backup.passphrase"
        echo "CERTPANEL_ROOT_COMMANDS_FILE=$config_dir/root-commands"
        echo "CERTPANEL_PANEL_PORT=$panel_port"
        echo "CERTPANEL_PANEL_UPSTREAM=$web_upstream"
        echo "CERTPANEL_SECURE_COOKIES=1"
        echo "DATABASE_URL=$database_url"
        echo "REDIS_URL=$redis_url"
        echo "NGINX_BIN=/usr/sbin/nginx"
        echo "NGINX_CONF=$nginx_conf"
        echo "NGINX_VHOST_DIR=$vhost_dir"
        echo "NGINX_HTTP_PORT=$http_port"
        echo "NGINX_HTTPS_PORT=$https_port"
        echo "NGINX_LISTEN_ADDRESS=$listen_address"
        echo "NGINX_LISTEN_FAMILIES=$listen_families"
        [ -z "$keep_nginx" ] || echo "CERTPANEL_KEEP_NGINX_CONFIG=1"
        # Settings an earlier run was given with --env, then this run's.
        for key in "${!stored[@]}"; do
            case "$key" in
                CERTPANEL_SECRET_KEY|CERTPANEL_ENCRYPTION_KEYS|CERTPANEL_SERVICE_USER|CERTPANEL_DATA_DIR|CERTPANEL_STATE_DIR|\
                CERTPANEL_CHALLENGE_DIR|CERTPANEL_CERT_DIR|CERTPANEL_HOME_ROOT|CERTPANEL_INSTALL_ROOTS|\
                CERTPANEL_BACKUP_DIR|CERTPANEL_BACKUP_PASSPHRASE_FILE|CERTPANEL_ROOT_COMMANDS_FILE|CERTPANEL_PANEL_PORT|CERTPANEL_PANEL_UPSTREAM|CERTPANEL_SECURE_COOKIES|\
                DATABASE_URL|REDIS_URL|NGINX_BIN|NGINX_CONF|NGINX_VHOST_DIR|NGINX_HTTP_PORT|NGINX_HTTPS_PORT|\
                NGINX_LISTEN_ADDRESS|NGINX_LISTEN_FAMILIES|CERTPANEL_KEEP_NGINX_CONFIG) ;;
                *) printf '%s\n' "$key=${stored[$key]}" ;;
            esac
        done | sort -t= -k1,1 | while IFS= read -r line; do
            key=${line%%=*}
            for given in "${extra_env[@]}"; do [ "${given%%=*}" = "$key" ] && continue 2; done
            echo "$line"
        done
        for given in "${extra_env[@]}"; do
            echo "$given"
        done
    }
    install_file "$env_file" root:root 0600 < <(render_env)
    # Reload presets run as root only when listed here (README: Least privilege); kept as edited.
    if [ ! -e "$config_dir/root-commands" ]; then
        install_file "$config_dir/root-commands" root:root 0644 <<'EOF'
# Reload commands that run as root when an install target's preset names them exactly, one per
# line, words as a shell would split them (e.g. /bin/systemctl reload postfix). Any other preset
# runs as the panel's user. Only root may write this file; it is read at every run.
EOF
    fi
    # The daily backup's passphrase (README: Backup and restore); generated once, kept across runs.
    if [ ! -s "$config_dir/backup.passphrase" ]; then
        install_file "$config_dir/backup.passphrase" root:root 0600 < <("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
    fi
}

ensure_layout() {  # ensure_layout USER: every directory, its owner and mode
    local user=$1
    # The data directory is root's and traversable (nginx's workers read challenge answers and
    # document roots below it); the panel's user owns only the directories it writes, so it cannot
    # move or replace one that root later reads or writes (certificates, backups, snapshots).
    ensure_dir "$code_dir" root:root 0755
    ensure_dir "$code_dir/releases" root:root 0755
    ensure_dir "$code_dir/venvs" root:root 0755
    ensure_dir "$code_dir/bin" root:root 0755
    ensure_dir "$config_dir" "root:$user" 0750
    ensure_dir "$data_dir" root:root 0755
    ensure_dir "$data_dir/state" "$user:$user" 0700
    ensure_dir "$data_dir/acme-challenge" "$user:$user" 0755
    ensure_dir "$data_dir/home" "$user:$user" 0755
    ensure_dir "$data_dir/external-challenges" "$user:$user" 0755
    ensure_dir "$data_dir/install" root:root 0755
    ensure_dir "$data_dir/certs" root:root 0711
    ensure_dir "$data_dir/backups" root:root 0700
    ensure_dir "$nginx_dir/conf.d" root:root 0755
    ensure_dir "$vhost_dir" root:root 0755
    ensure_dir "$run_dir" root:root 0755
    ensure_dir "$unit_dir" root:root 0755
}

ensure_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" 2>/dev/null | grep -qx 'Status: install ok installed' || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    changed "installed ${missing[*]}"
}

ensure_dir() {  # ensure_dir PATH OWNER:GROUP MODE
    local path=$1 owner=$2 mode=$3
    # chown and chmod follow a link: one planted here would hand its target to $owner.
    [ ! -L "$path" ] || die "$path is a symbolic link: move it away, then run this again"
    if [ ! -d "$path" ]; then
        install -d -o "${owner%%:*}" -g "${owner##*:}" -m "$mode" "$path"
        changed "created $path"
        return
    fi
    if [ "$(stat -c '%U:%G %a' "$path")" != "$owner ${mode#0}" ]; then
        chown "$owner" "$path"
        chmod "$mode" "$path"
        changed "set $path to $owner $mode"
    fi
}

install_file() {  # install_file PATH OWNER:GROUP MODE < content: replaced only when it differs
    local path=$1 owner=$2 mode=$3 tmp
    tmp=$(mktemp "$(dirname "$path")/.install.XXXXXX")
    cat > "$tmp"
    chown "$owner" "$tmp"
    chmod "$mode" "$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path" && [ "$(stat -c '%U:%G %a' "$path")" = "$owner ${mode#0}" ]; then
        rm -f "$tmp"
        return
    fi
    mv -f "$tmp" "$path"
    changed "wrote $path"
}

release_id() {  # the source's commit, plus a digest of uncommitted changes if any
    local source=$1
    if git -C "$source" rev-parse --git-dir >/dev/null 2>&1; then
        local commit dirty
        commit=$(git -C "$source" rev-parse --short=12 HEAD)
        dirty=$(cd "$source" && { git diff HEAD; git ls-files --others --exclude-standard -z | xargs -0r sha256sum; } | sha256sum | cut -c1-8)
        if [ -z "$(git -C "$source" status --porcelain --untracked-files=normal)" ]; then echo "$commit"; else echo "$commit-$dirty"; fi
    else
        (cd "$source" && find . -type f -not -path './.*' -not -path './data/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
    fi
}

install_release() {  # install_release SOURCE: sets $release, the release directory
    local source=$1 id staging
    id=$(release_id "$source")
    release=$code_dir/releases/$id
    if [ -f "$release/.certpanel-release" ]; then
        return
    fi
    staging=$code_dir/releases/.$id.partial
    rm -rf "$staging"
    mkdir -p "$staging"
    # The project's own files only: never .env, .venv, data/ or .git.
    (cd "$source" && tar -cf - --exclude=__pycache__ manage.py requirements.txt panel certs templates static locale scripts README.md ARCHITECTURE.md 2>/dev/null) \
        | tar -xf - --no-same-owner -C "$staging"
    chown -R root:root "$staging"  # root runs this code: nobody else may change it
    find "$staging/locale" -name '*.po' -exec sh -ec 'for po; do msgfmt --check-format -o "${po%.po}.mo" "$po"; done' sh {} +
    echo "$id" > "$staging/.certpanel-release"
    chmod -R go-w "$staging"
    mv "$staging" "$release"
    changed "installed release $id"
}

ensure_venv() {  # ensure_venv RELEASE PYTHON [SEED]: sets $venv, one per requirements.txt and Python
    local release=$1 python=$2 seed=$3 digest staging
    digest=$( { "$python" -c 'import sys; print(sys.version)'; cat "$release/requirements.txt"; } | sha256sum | cut -c1-16)
    venv=$code_dir/venvs/$digest
    if [ ! -x "$venv/bin/python" ]; then
        staging=$code_dir/venvs/.$digest.partial
        rm -rf "$staging"
        if [ -n "$seed" ]; then
            local seed_version target_version
            seed_version=$("$seed/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            target_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            [ "$seed_version" = "$target_version" ] \
                || die "--venv-seed $seed is for Python $seed_version; this system's is $target_version"
            # Hard links when every file of the seed is root's (pip replaces files, never edits
            # them in place); otherwise a copy. Either way root owns what root will run.
            if [ -z "$(find "$seed" ! -user root -print -quit)" ] && cp -al "$seed" "$staging" 2>/dev/null; then :; else
                rm -rf "$staging"
                cp -a --no-preserve=ownership "$seed" "$staging"
            fi
            chown -R root:root "$staging"
            # The copy runs on this system's interpreter, whatever built the seed.
            rm -f "$staging/pyvenv.cfg" "$staging"/bin/python*
            "$python" -m venv --without-pip "$staging"
        else
            "$python" -m venv "$staging"
        fi
        "$staging/bin/python" -m pip install -q --disable-pip-version-check -r "$release/requirements.txt" >&2
        mv -T "$staging" "$venv"
        changed "built the virtualenv $venv"
    fi
    if [ "$(readlink "$release/.venv" 2>/dev/null)" != "$venv" ]; then
        ln -sfn "$venv" "$release/.venv"
    fi
}

link_current() {
    local release=$1
    if [ "$(readlink "$current" 2>/dev/null)" != "$release" ]; then
        ln -sfn "$release" "$current.new"
        mv -T "$current.new" "$current"
        changed "made $(basename "$release") the current release"
    fi
}

load_env() {  # the panel's settings into this shell's environment
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
}

in_release() {  # in_release DIR manage ARGS...: that release's manage.py as the panel's user
    local dir=$1
    shift 2
    # setsid: no controlling terminal for the panel's user to push keystrokes into (TIOCSTI).
    (load_env; cd "$dir" && setsid -w setpriv --reuid="$CERTPANEL_SERVICE_USER" --regid="$CERTPANEL_SERVICE_USER" \
        --init-groups env HOME="$data_dir/state" "$dir/.venv/bin/python" manage.py "$@" </dev/null)
}

as_service() {  # as_service manage ARGS...: the current release's manage.py as the panel's user
    in_release "$current" "$@"
}

pg() {  # pg URL COMMAND [ARGS]: a PostgreSQL client on URL, its password in the environment, not in argv
    local url=$1 split
    shift
    split=$("$current/.venv/bin/python" - "$url" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1])
user, at, host = parts.netloc.rpartition("@")
user = user.partition(":")[0]
print(parts.password or "")
print(urlunsplit(("postgresql", f"{user}@{host}" if at else host, parts.path, parts.query, "")))
PY
)
    PGPASSWORD=$(head -1 <<<"$split") "$@" "$(tail -1 <<<"$split")"
}

take_snapshot() {  # take_snapshot LABEL: sets $snapshot (PostgreSQL: pg_dump's custom format; SQLite: a copy)
    local label=$1 url dir
    url=$(load_env; echo "$DATABASE_URL")
    dir=$data_dir/backups  # root's, 0700, in root's data directory
    ensure_dir "$dir" root:root 0700
    if [[ "$url" == sqlite* ]]; then
        snapshot=$(mktemp "$dir/pre-upgrade-$label-XXXXXX.sqlite3")
        "$current/.venv/bin/python" - "${url#sqlite://}" "$snapshot" <<'PY'
import sqlite3, sys
source = sqlite3.connect(sys.argv[1].replace("//", "/", 1) if sys.argv[1].startswith("//") else sys.argv[1])
target = sqlite3.connect(sys.argv[2])
source.backup(target)  # consistent while the panel writes
target.close()
PY
    else
        snapshot=$(mktemp "$dir/pre-upgrade-$label-XXXXXX.dump")
        pg "$url" pg_dump --format=custom --no-owner --no-privileges -f "$snapshot" \
            || die "pg_dump could not take the snapshot: nothing was changed"
    fi
    # The two newest are kept: each holds every secret of the panel.
    ls -1t "$dir"/pre-upgrade-* 2>/dev/null | tail -n +3 | xargs -r rm -f --
}

restore_snapshot() {  # the database as the snapshot holds it, in one transaction
    local snapshot=$1 url
    url=$(load_env; echo "$DATABASE_URL")
    if [[ "$snapshot" == *.sqlite3 ]]; then
        "$current/.venv/bin/python" - "$snapshot" "${url#sqlite://}" <<'PY'
import sqlite3, sys
target = sys.argv[2].replace("//", "/", 1) if sys.argv[2].startswith("//") else sys.argv[2]
sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(target))
PY
    else
        # Tables a failed upgrade created are not in the snapshot: the schema goes, then comes
        # back, in one transaction. The SQL is pg_restore's, from the root-only snapshot.
        { echo 'SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;'
          pg_restore --no-owner --no-privileges -f - "$snapshot"; } \
            | pg "$url" psql -q -1 -v ON_ERROR_STOP=1 >/dev/null \
            || die "the snapshot $snapshot could not be restored: restore it by hand (pg_restore) before starting the panel"
    fi
}

as_root_panel() {  # as_root_panel manage ARGS...: the deploy side's commands (nginx, certificate files)
    shift
    (load_env; cd "$current" && "$current/.venv/bin/python" manage.py "$@" </dev/null)
}

ensure_local_postgres() {  # role and database named after the service user; root maps to it (deploy worker)
    local user=$1 cluster_dir hba ident
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='$user'" | grep -q 1; then
        runuser -u postgres -- psql -qc "CREATE ROLE \"$user\" LOGIN"
        changed "created the PostgreSQL role $user"
    fi
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname='certpanel'" | grep -q 1; then
        runuser -u postgres -- createdb -O "$user" certpanel
        changed "created the PostgreSQL database certpanel"
    fi
    hba=$(runuser -u postgres -- psql -tAc 'SHOW hba_file')
    ident=$(runuser -u postgres -- psql -tAc 'SHOW ident_file')
    # The deploy worker runs as root and reaches the same database as the panel's user.
    if ! grep -q '^# certpanel' "$ident"; then
        printf '# certpanel: the panel user and root (its deploy worker) log in as %s\ncertpanel %s %s\ncertpanel root %s\n' \
            "$user" "$user" "$user" "$user" >> "$ident"
        changed "mapped root and $user to the role $user in $ident"
    fi
    if ! grep -q '^# certpanel' "$hba"; then
        sed -i "1i # certpanel: peer authentication through the socket, no password\nlocal certpanel $user peer map=certpanel" "$hba"
        changed "allowed $user and root into the database certpanel in $hba"
        runuser -u postgres -- psql -qc 'SELECT pg_reload_conf()' >/dev/null
    fi
}

ensure_database() {  # ensure_database URL: create the database on that server if it is missing
    local url=$1 name admin
    name=${url##*/}
    name=${name%%\?*}
    admin="${url%/*}/postgres"
    [[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || die "DATABASE_URL names the database '$name': letters, digits and _ only"
    if ! pg "$admin" psql -tAc "SELECT 1 FROM pg_database WHERE datname='$name'" | grep -q 1; then
        pg "$admin" psql -qc "CREATE DATABASE \"$name\"" || die "cannot create the database $name on that server"
        changed "created the database $name"
    fi
}

ensure_local_redis() {  # Debian's redis-server@certpanel: no TCP port, a socket for the panel's group
    local user=$1
    install_file /etc/redis/redis-certpanel.conf redis:redis 0640 <<EOF
# CertPanel's Redis (scripts/install): Celery's broker and the panel's locks.
port 0
unixsocket /run/redis-certpanel/redis-server.sock
unixsocketperm 770
pidfile /run/redis-certpanel/redis-server.pid
dir /var/lib/redis
dbfilename certpanel.rdb
appendonly yes
appendfilename certpanel.aof
appenddirname certpanel-aof
# Nothing the panel needs, and what would let a client write files as redis.
rename-command CONFIG ""
rename-command DEBUG ""
rename-command MODULE ""
EOF
    # The socket's group is the panel's own (not redis: that group may edit every Redis config).
    ensure_dir /etc/systemd/system/redis-server@certpanel.service.d root:root 0755
    install_file /etc/systemd/system/redis-server@certpanel.service.d/certpanel.conf root:root 0644 <<EOF
[Service]
Group=$user
SupplementaryGroups=redis
EOF
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable --quiet --now redis-server@certpanel
    fi
}

ensure_nginx_include() {  # conf.d/certpanel.conf includes the panel's vhosts
    local keep=$1
    local output
    # Debian's default site claims default_server on port 80: the panel's catch-all takes its
    # place (first, or nginx -t would refuse the two).
    if [ -z "$keep" ] && [ -L "$nginx_dir/sites-enabled/default" ]; then
        rm -f "$nginx_dir/sites-enabled/default"
        changed "disabled nginx's Debian default site ($nginx_dir/sites-enabled/default)"
    fi
    # Without default servers when CERTPANEL_KEEP_NGINX_CONFIG is in the panel's settings.
    output=$(as_root_panel manage write_nginx_config --system-include "$nginx_dir/conf.d/certpanel.conf" 2>&1) \
        || die "nginx's configuration was not written: $output"
    if grep -q '^wrote ' <<<"$output"; then changed "$(grep '^wrote ' <<<"$output")"; fi
}

write_wrapper() {  # bin/certpanel: manage.py with the panel's settings, as the right user
    local user=$1
    install_file "$code_dir/bin/certpanel" root:root 0755 <<EOF
#!/bin/sh
# certpanel COMMAND [ARGS]: the panel's manage.py with its settings ($env_file).
# runpanel, backup, restore and write_nginx_config run as root (they touch nginx and certificate
# files; runpanel starts web, ACME worker and beat as $user itself); everything else as $user.
set -eu
[ "\$(id -u)" -eq 0 ] || { echo "run certpanel as root" >&2; exit 1; }
set -a; . "$env_file"; set +a
cd "$current"
case "\${1:-}" in
    runpanel|backup|restore|write_nginx_config) exec "$current/.venv/bin/python" manage.py "\$@" ;;
esac
# Never the caller's terminal in the panel user's hands (TIOCSTI): a new one, or none.
if [ -t 0 ]; then
    exec runuser -P -u "\$CERTPANEL_SERVICE_USER" -- env HOME="$data_dir/state" "$current/.venv/bin/python" manage.py "\$@"
fi
exec setsid -w setpriv --reuid="\$CERTPANEL_SERVICE_USER" --regid="\$CERTPANEL_SERVICE_USER" --init-groups \\
    env HOME="$data_dir/state" "$current/.venv/bin/python" manage.py "\$@"
EOF
}

install_units() {
    local user=$1 unit
    for unit in "$current"/scripts/systemd/*; do
        install_file "$unit_dir/$(basename "$unit")" root:root 0644 < <(
            sed -e "s|@CODE@|$current|g" -e "s|@ENV@|$env_file|g" -e "s|@DATA@|$data_dir|g" \
                -e "s|@USER@|$user|g" -e "s|@VHOSTS@|$vhost_dir|g" -e "s|@RUN@|$run_dir|g" "$unit")
    done
}

finish() {
    local port=$1 password=$2 entrance=$3 host
    host=$(hostname -f 2>/dev/null || hostname)
    echo
    if [ ${#changes[@]} -eq 0 ]; then
        echo "Nothing changed: CertPanel is installed as asked."
    else
        echo "CertPanel is installed (${#changes[@]} changes)."
    fi
    echo "  Panel:  https://$host:$port/${entrance:+$entrance/}   (a self-signed certificate until you give the panel a domain)"
    [ -z "$entrance" ] || echo "          the login page answers only after a visit to that address (security entrance)"
    echo "  Backups: daily into $data_dir/backups, sealed with the passphrase in $config_dir/backup.passphrase:"
    echo "           keep a copy of that file off this server (a backup cannot be opened without it)."
    if [ -n "$password" ]; then
        echo "  Log in as admin with password: $password"
        echo "  (shown only now; change it on the panel's Account page)"
    fi
    if [ ! -d /run/systemd/system ]; then
        echo "  systemd is not running here: start the panel with  $code_dir/bin/certpanel runpanel --production"
        if [ "${local_redis:-false}" = true ]; then
            echo "  ... after its Redis:  runuser -u redis -g $service_user -- redis-server /etc/redis/redis-certpanel.conf --daemonize yes"
        fi
    fi
}
