#!/usr/bin/env bash
# Build the web dashboard (dashboard/ -> dashboard/dist) when its sources
# changed since the last build. Installs Node.js and npm from Debian's
# packages when missing and running as root. Idempotent and quick when
# nothing changed (a hash of the sources is kept in dashboard/dist/.stamp).
#
#   scripts/ensure-dashboard.sh          build if needed
#   scripts/ensure-dashboard.sh --force  build anyway
set -euo pipefail
cd "$(dirname "$0")/../dashboard"
NEED_MAJOR=20
NEED_MINOR=19

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing nodejs and npm (Debian packages) ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
        echo "error: the dashboard needs Node.js >= $NEED_MAJOR.$NEED_MINOR and npm" \
             "(Debian: sudo apt-get install nodejs npm)" >&2
        exit 1
    fi
fi
version=$(node -p 'process.versions.node')
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
if [ "$major" -lt "$NEED_MAJOR" ] || { [ "$major" -eq "$NEED_MAJOR" ] && [ "$minor" -lt "$NEED_MINOR" ]; }; then
    echo "error: the dashboard needs Node.js >= $NEED_MAJOR.$NEED_MINOR (Vite 8); this is $version" >&2
    exit 1
fi

# Everything the build reads; node_modules and the output are not sources.
hash=$( { find src public scripts -type f -print0 | sort -z | xargs -0 sha256sum;
          sha256sum index.html package.json package-lock.json tsconfig.json vite.config.ts .npmrc;
          echo "node $major"; } | sha256sum | cut -d' ' -f1)
stamp=dist/.stamp
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -f dist/index.html ]; then
    exit 0
fi

# npm ci installs exactly the lock file; node_modules is reused when the lock is unchanged.
lock_hash=$(sha256sum package-lock.json .npmrc | sha256sum | cut -d' ' -f1)
if [ ! -f node_modules/.lock-hash ] || [ "$(cat node_modules/.lock-hash)" != "$lock_hash" ]; then
    echo "installing the dashboard's npm packages ..."
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > node_modules/.lock-hash
fi
echo "building the dashboard ..."
npm run --silent build
echo "$hash" > "$stamp"
