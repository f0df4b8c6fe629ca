#!/usr/bin/env bash
# The Space's start: choose where data and models live, seed the demo data there, bring models and killed
# jobs back (`python -m har.bootstrap`), then run the command (the Streamlit app) in this process's place.
# tini, process 1, reaps every process that ends. Tested by tests/test_deployment.py, which runs this file.
set -euo pipefail

APP_DIR=${HAR_APP_DIR:-/home/user/app}   # where the image installed the app and built the demo data
VOLUME=${HAR_VOLUME:-/data}              # where a Storage Bucket is mounted, if one is

# A mounted bucket is used only if this user can write to it: a read-only or root-owned mount is no place to
# keep runs, and the app says so (har.storage.status) instead of failing at the first save.
if [ -z "${HAR_HOME:-}" ]; then
    probe="$VOLUME/.har-write-test-$$"
    if [ -d "$VOLUME" ] && touch "$probe" 2>/dev/null; then
        rm -f "$probe"
        export HAR_HOME="$VOLUME"
    else
        if [ -d "$VOLUME" ]; then
            echo "har: $VOLUME is not writable by $(id -un 2>/dev/null || id -u); keeping data in $APP_DIR (lost on restart)" >&2
        fi
        export HAR_HOME="$APP_DIR"
    fi
fi
mkdir -p "$HAR_HOME/data" "$HAR_HOME/models"
echo "har: HAR_HOME=$HAR_HOME"

# The image built the demo dataset and its frame caches into the app folder; a fresh volume gets a copy (seconds,
# not a rebuild). `cp -p` keeps the clips' times, which the caches' fingerprints include, so the copied caches
# stay current and the shipped runs bind to them on import (their test split, Compare, the held-out clips).
copy_once() {  # copy_once FROM TO: TO appears whole or not at all
    if [ ! -e "$2" ] && [ -d "$1" ]; then
        rm -rf "$2.copying"
        cp -rp "$1" "$2.copying" && mv "$2.copying" "$2"
    fi
}
copy_once "$APP_DIR/data/demo" "$HAR_HOME/data/demo"
if [ -d "$APP_DIR/data/caches" ]; then
    mkdir -p "$HAR_HOME/data/caches"
    for cache in "$APP_DIR"/data/caches/demo-*; do
        [ -d "$cache" ] && copy_once "$cache" "$HAR_HOME/data/caches/$(basename "$cache")"
    done
fi

# Pretrained runs, killed jobs, HAR_BOOTSTRAP=report. A failure here is reported but never keeps the app down.
# HAR_PYTHON: the interpreter to run them with (default: the first `python` on PATH, the image's).
(cd "$APP_DIR" && "${HAR_PYTHON:-python}" -m har.bootstrap --pretrained "$APP_DIR/pretrained") || echo "har: start-up tasks failed; the app starts anyway" >&2

exec "$@"
