#!/usr/bin/env bash
# System packages some tests need beyond Python's: a PostgreSQL server (reporting's projection
# suite runs on it as well as on SQLite), Chromium and a CJK font (the dashboard's browser test).
# Idempotent: installs only what is missing. Without root or apt it says so, and those tests
# skip with the reason.
set -uo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Chinese labels in the dashboard's screenshots need a CJK font.
fc-list 2>/dev/null | grep -qi "wqy\|noto.*cjk" || missing+=(fonts-wqy-zenhei)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not installing ${missing[*]} (needs root and apt-get); their tests skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || echo "system-deps: could not install ${missing[*]}; their tests skip" >&2
