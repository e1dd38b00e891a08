#!/usr/bin/env bash
# Make sure the development services run on this machine: PostgreSQL on
# 127.0.0.1:${NAZAR_PG_PORT:-5432} (user postgres, no password over local TCP) and
# RabbitMQ on 127.0.0.1:${NAZAR_AMQP_PORT:-5672}; then create the databases named as
# arguments when they are missing.
#
#   scripts/ensure-services.sh nazar nazar_test
#
# Quiet when everything already runs. Starts installed servers (Debian clusters via
# pg_ctlcluster, RabbitMQ via rabbitmq-server -detached; no systemd needed) and, when
# running as root, installs missing ones from Debian's packages. This is a development
# setup: it may add "trust" rules for 127.0.0.1/::1 to pg_hba.conf (and says so).
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT="${NAZAR_PG_PORT:-5432}"
AMQP_HOST=127.0.0.1
AMQP_PORT="${NAZAR_AMQP_PORT:-5672}"
WAIT_SECONDS="${NAZAR_SERVICE_WAIT:-60}"
HBA_MARKER="# nazar ensure-services.sh: development setup, local TCP without password"

say() { echo "ensure-services: $*" >&2; }
die() {
    echo "error: $*" >&2
    exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }
no_systemd() { [ ! -d /run/systemd/system ]; }

# Is something accepting TCP connections on host:port?
port_open() {
    timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}

# wait_for MESSAGE COMMAND...: poll COMMAND until it succeeds (up to WAIT_SECONDS),
# then print MESSAGE.
wait_for() {
    local what="$1"
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 1
    done
    say "$what"
}

APT_UPDATED=0
POLICY_RC_D=/usr/sbin/policy-rc.d
CREATED_POLICY=0
remove_policy() {
    if [ "$CREATED_POLICY" = 1 ]; then
        rm -f "$POLICY_RC_D"
        CREATED_POLICY=0
    fi
}
trap remove_policy EXIT

apt_install() {
    have apt-get || die "cannot install $* here (no apt-get); install it yourself"
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update ..."
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "installing $* ..."
    if no_systemd && [ ! -e "$POLICY_RC_D" ]; then
        # Without systemd the packages' postinst would try (and possibly fail) to start
        # the services through init scripts; forbid that, this script starts them itself.
        CREATED_POLICY=1
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC_D"
        chmod 755 "$POLICY_RC_D"
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null || status=$?
    remove_policy
    [ "$status" = 0 ] || die "apt-get install $* failed (exit $status)"
}

# --------------------------------------------------------------------- PostgreSQL

pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

pg_installed() {
    have pg_lsclusters || compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# "version name port status" of the Debian clusters, the one on PG_PORT first.
pg_clusters() {
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '
        $3 == port { print $1, $2, $3, $4; next } { rest = rest $1 " " $2 " " $3 " " $4 "\n" }
        END { printf "%s", rest }'
}

pg_start_cluster() {
    local version="$1" name="$2"
    say "starting PostgreSQL cluster $version/$name ..."
    if pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start 2>/dev/null; then
        return 0
    fi
    if pg_ctlcluster "$version" "$name" start 2>/dev/null; then
        return 0
    fi
    if is_root && have service; then
        service postgresql start >/dev/null 2>&1 && return 0
    fi
    is_root || die "cannot start PostgreSQL cluster $version/$name as $(id -un); run:
    sudo pg_ctlcluster $version $name start"
    die "could not start PostgreSQL cluster $version/$name; see /var/log/postgresql/"
}

ensure_postgres() {
    if pg_answers; then
        return 0
    fi
    if ! pg_installed; then
        is_root || die "PostgreSQL is not installed. Install it and run this again:
    sudo apt-get install postgresql        # Debian/Ubuntu
or run this script as root to have it installed."
        apt_install postgresql
    fi
    have pg_lsclusters || die "PostgreSQL is installed but not Debian's cluster tools \
(pg_lsclusters); start a server on $PG_HOST:$PG_PORT yourself"
    local clusters
    clusters="$(pg_clusters)"
    if [ -z "$clusters" ]; then
        is_root || die "no PostgreSQL cluster exists; create one with:
    sudo pg_createcluster <version> main --port $PG_PORT --start"
        local version
        version="$(find /usr/lib/postgresql -maxdepth 1 -mindepth 1 -printf '%f\n' \
            | sort -n | tail -1)"
        say "creating PostgreSQL cluster $version/main on port $PG_PORT ..."
        pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
        clusters="$(pg_clusters)"
    fi
    local version name port status
    read -r version name port status <<<"$(head -1 <<<"$clusters")"
    if [ "$port" != "$PG_PORT" ]; then
        die "no PostgreSQL cluster uses port $PG_PORT (clusters: $(tr '\n' ';' <<<"$clusters"))
set NAZAR_PG_PORT, or move a cluster to port $PG_PORT in its postgresql.conf"
    fi
    case "$status" in
    online*) ;;
    *) pg_start_cluster "$version" "$name" ;;
    esac
    wait_for "PostgreSQL $version/$name is up on $PG_HOST:$PG_PORT" pg_answers \
        || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s \
(see /var/log/postgresql/postgresql-$version-$name.log)"
}

# psql as the postgres role over local TCP, never prompting for a password.
pg_sql() {
    PGCONNECT_TIMEOUT=5 psql -X -w -q -A -t -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"
}

# psql as the postgres OS user over the unix socket (peer authentication).
pg_sql_local() {
    runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
}

ensure_pg_trust() {
    have psql || die "psql not found; install the PostgreSQL client (Debian: postgresql-client)"
    if pg_sql -c 'select 1' >/dev/null 2>&1; then
        return 0
    fi
    local hint="make 127.0.0.1 connections as user postgres work without a password, e.g.
by adding these lines at the top of pg_hba.conf and reloading PostgreSQL:
    host all all 127.0.0.1/32 trust
    host all all ::1/128 trust"
    if ! is_root || ! have runuser; then
        die "cannot connect to PostgreSQL as postgres@$PG_HOST:$PG_PORT; $hint"
    fi
    local hba
    hba="$(pg_sql_local -c 'show hba_file' 2>/dev/null)" \
        || die "cannot connect to PostgreSQL as postgres@$PG_HOST:$PG_PORT; $hint"
    if ! grep -qF "$HBA_MARKER" "$hba"; then
        local tmp
        tmp="$(mktemp)"
        {
            echo "$HBA_MARKER"
            echo "host all all 127.0.0.1/32 trust"
            echo "host all all ::1/128 trust"
            echo
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba" # keeps the file's owner and mode
        rm -f "$tmp"
        say "added 'trust' rules for 127.0.0.1 and ::1 at the top of $hba (development setup)"
    fi
    pg_sql_local -c 'select pg_reload_conf()' >/dev/null
    wait_for "PostgreSQL now accepts postgres@$PG_HOST without a password" pg_sql -c 'select 1' >/dev/null \
        || die "still cannot connect as postgres@$PG_HOST:$PG_PORT after editing $hba"
}

ensure_databases() {
    local db literal ident exists
    for db in "$@"; do
        literal="${db//\'/\'\'}"
        ident="${db//\"/\"\"}"
        exists="$(pg_sql -c "select 1 from pg_database where datname = '$literal'")" \
            || die "cannot query PostgreSQL on $PG_HOST:$PG_PORT"
        if [ -z "$exists" ]; then
            pg_sql -c "create database \"$ident\"" >/dev/null || die "could not create database $db"
            say "created database $db"
        fi
    done
}

# --------------------------------------------------------------------- RabbitMQ

rabbit_answers() { port_open "$AMQP_HOST" "$AMQP_PORT"; }

rabbit_installed() { have rabbitmq-server; }

ensure_rabbitmq() {
    if rabbit_answers; then
        return 0
    fi
    if ! rabbit_installed; then
        # Debian puts it in /usr/sbin, which a non-root PATH may lack.
        if [ -x /usr/sbin/rabbitmq-server ]; then
            PATH="$PATH:/usr/sbin"
        elif is_root; then
            apt_install rabbitmq-server
            # The postinst may have started it (systemd or init script) after all.
            rabbit_answers && return 0
        else
            die "RabbitMQ is not installed. Install it and run this again:
    sudo apt-get install rabbitmq-server        # Debian/Ubuntu
or run this script as root to have it installed."
        fi
    fi
    local server
    server="$(readlink -f "$(command -v rabbitmq-server)")"
    if ! is_root && [ "$(id -un)" != rabbitmq ] && [[ "$server" == */rabbitmq-script-wrapper ]]; then
        # Debian's wrapper only serves root and rabbitmq (others get a foreground start
        # attempt and an error).
        die "RabbitMQ is installed but not running; start it with:
    sudo rabbitmq-server -detached      (or: sudo service rabbitmq-server start)"
    fi
    say "starting RabbitMQ (rabbitmq-server -detached) ..."
    # Debian's rabbitmq-server wrapper runs the server as the rabbitmq user (root or
    # rabbitmq may call it); -detached works without systemd.
    if ! rabbitmq-server -detached >/dev/null 2>&1; then
        is_root || die "could not start RabbitMQ as $(id -un); run:
    sudo rabbitmq-server -detached      (or: sudo service rabbitmq-server start)"
        die "rabbitmq-server -detached failed; see /var/log/rabbitmq/"
    fi
    wait_for "RabbitMQ is up on $AMQP_HOST:$AMQP_PORT" rabbit_answers \
        || die "RabbitMQ does not answer on $AMQP_HOST:$AMQP_PORT after ${WAIT_SECONDS}s \
(see /var/log/rabbitmq/; if it listens on another port, set NAZAR_AMQP_PORT)"
}

# --------------------------------------------------------------------- main

ensure_postgres
ensure_pg_trust
ensure_databases "$@"
ensure_rabbitmq
