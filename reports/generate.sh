#!/usr/bin/env bash
# Regenerate the example reports in this directory from real images: the corpus that
# tools/corpus/ builds from Debian packages and serves on 127.0.0.1:5000
#   bash tools/corpus/registry.sh start && bash tools/corpus/build_corpus.sh
#   bash reports/generate.sh
# Each image is scanned once to JSON (kept outside the repository: tens of MB), then
# `portscan report` renders the HTML report and the Markdown summary from that file.
# busybox-static, the smallest, also keeps its JSON, SARIF and CycloneDX output.
set -euo pipefail
cd "$(dirname "$0")"
REGISTRY=${REGISTRY:-127.0.0.1:5000}
WORK=${WORK:-$(mktemp -d)}
IMAGES=(nginx:latest redis:latest postgres:15 python:3.11 sqlite:latest busybox:static)
portscan=(python3 -m portscan.cli)

curl -fsS "http://$REGISTRY/v2/" >/dev/null \
  || { echo "generate.sh: no registry on $REGISTRY (see tools/corpus/README.md)" >&2; exit 1; }

summaries=()
for image in "${IMAGES[@]}"; do
  name=${image%%:*}
  [[ $image == busybox:static ]] && name=busybox-static
  echo "scanning $REGISTRY/corpus/$image" >&2
  "${portscan[@]}" image "$REGISTRY/corpus/$image" -q --format json -o "$WORK/$name.json"
  "${portscan[@]}" report "$WORK/$name.json" --html "$name.html" --format markdown -o "$name.md"
  summaries+=("$name")
done
"${portscan[@]}" report "$WORK/busybox-static.json" --format json -o busybox-static.json
"${portscan[@]}" report "$WORK/busybox-static.json" --format sarif -o busybox-static.sarif
"${portscan[@]}" report "$WORK/busybox-static.json" --format cyclonedx -o busybox-static.cdx.json

{
  echo "# Example reports"
  echo
  echo "What portscan produces for real images built from Debian bookworm packages"
  echo "(\`tools/corpus/\`). Open an \`.html\` file in a browser: each is one"
  echo "self-contained page that makes no network request. The summaries below are the"
  echo "\`--format markdown\` output, as a pull-request comment would show them."
  echo "\`busybox-static.json\`, \`.sarif\` and \`.cdx.json\` show the machine formats."
  echo "Regenerate everything with \`bash reports/generate.sh\` (about a minute)."
  for name in "${summaries[@]}"; do
    echo
    echo "---"
    echo
    echo "[$name.html]($name.html)"
    echo
    cat "$name.md"
  done
} > README.md
echo "wrote $(ls ./*.html | wc -l) HTML reports and README.md" >&2
