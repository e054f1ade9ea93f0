#!/usr/bin/env bash
# Install what LLMSafeSpace needs on a fresh Debian machine (python3.11+); idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the local sandbox driver needs: bubblewrap, setpriv (util-linux) and
# libseccomp. apt-get runs only when one is missing.
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
compgen -G '/usr/lib/*/libseccomp.so.2' >/dev/null || missing+=(libseccomp2)
# networkAccess: slirp4netns (user-mode network) and nftables (the fence on sandbox uids).
command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
[ -x /usr/sbin/nft ] || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# gVisor for securityLevel high, where apt offers it (see the script).
bash scripts/install-gvisor.sh
# slirp4netns opens /dev/net/tun as the sandbox uid; Debian's default mode is 0666.
if [ -c /dev/net/tun ] && [ "$(id -u)" -eq 0 ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
fi

# uv: on PATH, or installed with pip and run as a module (a freshly pip-installed
# executable may not be on PATH yet, e.g. behind pyenv shims).
if command -v uv >/dev/null 2>&1; then
    uv=(uv)
else
    python3 -m uv --version >/dev/null 2>&1 \
        || python3 -m pip install --quiet uv 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages uv
    uv=(python3 -m uv)
fi

"${uv[@]}" sync --all-packages --frozen
