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
# Disk-backed workspaces: a loop-mounted ext4 image per sandbox (mount is util-linux).
[ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
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

# Sandbox runtimes: the shell of a sandbox is the host's /usr: `which` (debianutils), pip
# for the sandbox interpreter (python3-pip), curl, and Node.js with npm. And Debian's
# Chromium, the browser tests/console drives with Playwright (Playwright's own browser
# download cannot be used; the console's JavaScript is committed built, see console/).
missing=()
command -v which >/dev/null 2>&1 || missing+=(debianutils)
/usr/bin/python3.11 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
for tool in curl tar gzip unzip; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# python:3.11-data: the pinned packages of runtimes/python-data/requirements.txt in one
# read-only prefix every such sandbox binds (never copied); rebuilt when the pins or the
# options change. Byte-compiled here: a sandbox cannot write __pycache__ into it, so each
# would compile pandas and matplotlib again on import (2.3 s instead of 0.8).
data_dir=/var/lib/llmsafespace/runtimes/python-3.11-data
data_pins=runtimes/python-data/requirements.txt
data_options=(--no-deps --compile-bytecode)
data_stamp="$(cat "$data_pins")
# uv pip install ${data_options[*]}"
if [ "$(id -u)" -eq 0 ] && [ "$data_stamp" != "$(cat "$data_dir/.installed" 2>/dev/null)" ]; then
    rm -rf "$data_dir.new"
    mkdir -p "$(dirname "$data_dir")"
    chmod 0755 /var/lib/llmsafespace "$(dirname "$data_dir")"
    "${uv[@]}" pip install --quiet --python /usr/bin/python3.11 --target "$data_dir.new" \
        "${data_options[@]}" -r "$data_pins"
    printf '%s' "$data_stamp" >"$data_dir.new/.installed"
    chmod -R a+rX,go-w "$data_dir.new"
    rm -rf "$data_dir" && mv "$data_dir.new" "$data_dir"
fi
