#!/usr/bin/env bash
# Snapshot what `portscan image` writes for every corpus OCI layout, in every format,
# with run-dependent values (timestamps, durations, UUIDs) masked, so two checkouts can
# be compared byte for byte:
#   PYTHONPATH=/path/to/old  tools/output_snapshot.sh /tmp/out-old
#   PYTHONPATH=/path/to/new  tools/output_snapshot.sh /tmp/out-new
#   diff -r /tmp/out-old /tmp/out-new && echo identical
# Layouts come from tools/corpus (default /tmp/portscan-corpus/oci).
set -euo pipefail
out=${1:?usage: output_snapshot.sh OUTDIR}
layouts=${CORPUS_OCI:-/tmp/portscan-corpus/oci}
mkdir -p "$out"
mask() {
  sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?/TIMESTAMP/g' \
         -e 's/"duration_seconds": ?[0-9.]+/"duration_seconds":0/g' \
         -e 's/urn:uuid:[0-9a-f-]+/urn:uuid:X/g' \
         -e 's/scanned in [0-9.]+ s/scanned in 0 s/g' -e 's/(TIMESTAMP \([0-9.]+ s\))/TIMESTAMP (0 s)/g' "$1" > "$1.masked" && mv "$1.masked" "$1"
}
for layout in "$layouts"/*/; do
  name=$(basename "$layout")
  ref="oci:$layout"
  python3 -m portscan.cli image "$ref" --format json --output "$out/$name.json" --html "$out/$name.html" || echo "$name json: exit $?"
  for format in sarif cyclonedx markdown table; do
    python3 -m portscan.cli image "$ref" --format "$format" --output "$out/$name.$format" || echo "$name $format: exit $?"
  done
  for file in "$out/$name".*; do mask "$file"; done
done
