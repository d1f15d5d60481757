#!/usr/bin/env bash
# Ablation rows on a GPU machine that has CUDA PyTorch but no DVC, no MLflow and no network.
#
#   deploy/offline_rows.sh bundle DATASET...   # here: wheels and audio into .offline/ (git-ignored)
#   deploy/offline_rows.sh install             # there: the wheels into /tmp/offline-site
#   deploy/offline_rows.sh run STORE ROW...    # there: each row with --without-dvc, MLflow store in STORE
#
# Copy the tree with .offline/ to the machine; bring STORE back to the same absolute path here (the
# runs' artifact paths are absolute) and record the rows:
#   MLFLOW_TRACKING_URI=sqlite:///STORE/mlflow.db python -m pipelines.results
# `install` needs .offline/wheels only and `run` the rest, so where the copy's size is limited they
# may travel apart, to one machine: the installed wheels stay in /tmp/offline-site.
set -euo pipefail

BUNDLE=.offline
SITE=${OFFLINE_SITE:-/tmp/offline-site}
PYTHON_VERSION=3.12  # the GPU image's python3
# What the stages need beyond a CUDA PyTorch image: MLflow's client and sqlite store, soundfile.
NEEDS=("mlflow-skinny==3.17.2" "soundfile>=0.12" "sqlalchemy>=2" "alembic")
# In the image already (its numpy, pyyaml, protobuf, requests... are kept), or never imported here.
SKIP=" numpy protobuf pyyaml requests certifi idna urllib3 charset_normalizer packaging click cloudpickle
       typing_extensions markupsafe anyio h11 annotated_doc zipp google_auth pyasn1 pyasn1_modules "

bundle() {
    [ $# -ge 1 ] || { echo "usage: $0 bundle DATASET... (under ${ESC_SHARED_DATA:-../shared/data})" >&2; exit 2; }
    rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
    local all; all=$(mktemp -d)
    python3 -m pip download -q --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$all" "${NEEDS[@]}"
    for wheel in "$all"/*.whl; do
        name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]' '[:lower:]')
        [[ "$SKIP" == *" $name "* ]] || cp "$wheel" "$BUNDLE/wheels/"
    done
    rm -rf "$all"
    for dataset in "$@"; do
        src="${ESC_SHARED_DATA:-../shared/data}/$dataset"
        [ -d "$src" ] || { echo "no dataset at $src: set ESC_SHARED_DATA to the folder holding it" >&2; exit 1; }
        cp -r "$src" "$BUNDLE/data/$dataset" && rm -f "$BUNDLE/data/$dataset"/{README*,SOURCE.md}
    done
    python3 -m pipelines.provenance "$BUNDLE"  # commit and changed_files: the copy has no .git
    mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
    echo "bundle: wheels $(mib "$(du -sb "$BUNDLE/wheels" | cut -f1)") MiB ($(ls "$BUNDLE/wheels" | wc -l) files)," \
         "data $(mib "$(du -sb "$BUNDLE/data" | cut -f1)") MiB ($*), tracked tree" \
         "$(mib "$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)") MiB"
}

install() {
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$BUNDLE"/wheels/*.whl
}

run() {
    [ $# -ge 2 ] || { echo "usage: $0 run STORE ROW..." >&2; exit 2; }
    [ -d "$SITE/mlflow" ] || { echo "no MLflow in $SITE: run '$0 install' first" >&2; exit 1; }
    local store; store=$(realpath -m "$1"); shift
    mkdir -p "$store"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 ESC_SHARED_DATA="$BUNDLE/data"
    export MLFLOW_TRACKING_URI="sqlite:///$store/mlflow.db"
    ESC_GIT_COMMIT=$(cat "$BUNDLE/commit"); ESC_GIT_CHANGED_FILES=$(paste -sd' ' "$BUNDLE/changed_files")
    export ESC_GIT_COMMIT ESC_GIT_CHANGED_FILES
    for row in "$@"; do
        python3 -m pipelines.ablation "$row" --without-dvc 2>&1 | tee "$store/$row.log"
    done
}

command=${1:-}; shift || true
case "$command" in
    bundle | install | run) "$command" "$@" ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
