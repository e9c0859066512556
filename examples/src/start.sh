#!/bin/sh
# The demo image's entrypoint: a wrapper that sets a default and hands over to the program.
: "${GREETING:=WebAssembly}"
export GREETING
exec /app/hello "$@"
