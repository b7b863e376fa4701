#!/bin/sh
# Trust every *.crt in the given directory (docker/certs/ in the build context) for apt and pip.
# Behind a TLS-intercepting proxy the proxy's CA must be trusted before the first download.
# The certificates go where update-ca-certificates finds them, so they survive when the
# ca-certificates package regenerates the bundle, and are appended to the bundle right away so
# apt (https mirrors) and pip (PIP_CERT) trust them before that package is even installed.
set -eu
source_dir="$1"
target_dir=/usr/local/share/ca-certificates/build-context
bundle=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$target_dir" /etc/ssl/certs
count=0
for certificate in "$source_dir"/*.crt; do
    [ -f "$certificate" ] || continue
    cp "$certificate" "$target_dir/"
    cat "$certificate" >> "$bundle"
    count=$((count + 1))
done
echo "trust-build-certs: $count certificate file(s) from $source_dir trusted"
