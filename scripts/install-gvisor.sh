#!/usr/bin/env bash
# gVisor for securityLevel high: Debian's runsc (~23 MB), where apt offers it. Without it
# "high" answers 400 and its tests skip, saying why. Run by setup.sh (RUNSC: where runsc
# is expected; tests point it elsewhere).
set -uo pipefail
RUNSC=${RUNSC:-/usr/bin/runsc}
APT_RETRY_DELAY=${APT_RETRY_DELAY:-5}

# Read whole, then matched: `apt-cache ... | grep -q` under pipefail failed whenever grep
# stopped reading at the match and apt-cache, still writing, died of SIGPIPE.
runsc_candidate() {
    local policy
    policy=$(apt-cache policy runsc 2>/dev/null)
    grep -q 'Candidate: [0-9]' <<<"$policy"
}

# apt-get update, once more when it fails (a mirror mid-sync, another apt holding the
# lock); apt's own error is printed when the second attempt fails too.
apt_update() {
    local output
    output=$(apt-get update -qq 2>&1) && return 0
    sleep "$APT_RETRY_DELAY"
    output=$(apt-get update -qq 2>&1) && return 0
    echo "note: apt-get update failed twice; apt said:" >&2
    printf '%s\n' "$output" | sed 's/^/  /' >&2
    return 1
}

[ -x "$RUNSC" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "note: gVisor is not installed; for securityLevel high: sudo apt-get install runsc" >&2
    exit 0
fi
updated=yes
if runsc_candidate || { apt_update || updated=no; [ $updated = yes ] && runsc_candidate; }; then
    if ! output=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc 2>&1); then
        echo "note: apt-get install runsc failed; securityLevel high stays unavailable:" >&2
        printf '%s\n' "$output" | sed 's/^/  /' >&2
    fi
elif [ $updated = no ]; then
    echo "note: securityLevel high stays unavailable until apt can update (see above)" >&2
else
    echo "note: apt offers no runsc here (apt-cache policy runsc has no candidate);" \
        "securityLevel high stays unavailable" >&2
fi
exit 0
