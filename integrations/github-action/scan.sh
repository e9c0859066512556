#!/usr/bin/env bash
# The scan step of the portscan GitHub Action (action.yml); it runs in any CI as well.
# Inputs: INPUT_IMAGE (required), INPUT_FAIL_ON, INPUT_MIN_SCORE, INPUT_TARGET (targets
# separated by spaces), INPUT_SARIF, INPUT_JSON, INPUT_ARGS (further options separated
# by spaces); PORTSCAN is the command to run (default: portscan).
# Outputs: the SARIF and JSON files, a Markdown summary appended to $GITHUB_STEP_SUMMARY,
# and sarif=, json=, exit-code= lines appended to $GITHUB_OUTPUT, when those are set.
# The exit code is portscan's: 0, 10 when a gate failed (the files are written first),
# or the error's code (docs/commands/image.md).
set -euo pipefail

if [ -z "${INPUT_IMAGE:-}" ]; then
    echo "portscan action: error: the image input is empty" >&2
    exit 2
fi
sarif="${INPUT_SARIF:-portscan.sarif}"
json="${INPUT_JSON:-portscan.json}"
read -r -a command <<< "${PORTSCAN:-portscan}"
summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT

args=(image "$INPUT_IMAGE" --quiet --format table
      -o "sarif=$sarif" -o "json=$json" -o "markdown=$summary")
if [ -n "${INPUT_FAIL_ON:-}" ]; then args+=(--fail-on "$INPUT_FAIL_ON"); fi
if [ -n "${INPUT_MIN_SCORE:-}" ]; then args+=(--min-score "$INPUT_MIN_SCORE"); fi
read -r -a targets <<< "${INPUT_TARGET:-}"
for target in "${targets[@]}"; do args+=(--target "$target"); done
read -r -a extra <<< "${INPUT_ARGS:-}"
args+=("${extra[@]}")

status=0
"${command[@]}" "${args[@]}" || status=$?

if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -s "$summary" ]; then
    cat "$summary" >> "$GITHUB_STEP_SUMMARY"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "exit-code=$status" >> "$GITHUB_OUTPUT"
    if [ -s "$sarif" ]; then echo "sarif=$sarif" >> "$GITHUB_OUTPUT"; fi
    if [ -s "$json" ]; then echo "json=$json" >> "$GITHUB_OUTPUT"; fi
fi
exit "$status"
