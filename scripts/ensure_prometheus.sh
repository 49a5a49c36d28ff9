#!/usr/bin/env bash
# Ensure the Prometheus toolchain used by driftgate's alerting tests is installed:
#   promtool, prometheus          (Debian package "prometheus")
#   prometheus-alertmanager, amtool (Debian package "prometheus-alertmanager")
#
# Idempotent: does nothing when all binaries are already on PATH. Otherwise installs the
# Debian packages with apt-get (root required). The Debian post-install scripts may try to
# start the services; on machines without systemd they usually do not, but if this script
# finds a daemon that appeared during the install it stops exactly that PID.
#
# Usage: scripts/ensure_prometheus.sh            (exit 0 when the tools are available)
set -euo pipefail

required=(promtool prometheus prometheus-alertmanager amtool)

missing=()
for bin in "${required[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "ensure_prometheus: all present: $(command -v promtool) ($(promtool --version 2>&1 | head -n1))"
    exit 0
fi

echo "ensure_prometheus: missing: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_prometheus: apt-get not found; install Prometheus (promtool, prometheus) and" \
         "Alertmanager (prometheus-alertmanager or alertmanager, amtool) manually." >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure_prometheus: must run as root to install packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager" >&2
    exit 1
fi

# PIDs whose executable is one of the packaged daemons (matched by /proc/PID/exe, exactly).
daemon_pids() {
    local exe pid
    for exe in /proc/[0-9]*/exe; do
        pid="${exe#/proc/}"; pid="${pid%/exe}"
        case "$(readlink "$exe" 2>/dev/null)" in
            /usr/bin/prometheus|/usr/bin/prometheus-alertmanager) echo "$pid" ;;
        esac
    done
}

# PIDs of daemons already running before the install: never touch those.
pids_before="$(daemon_pids | tr '\n' ' ')"

export DEBIAN_FRONTEND=noninteractive
apt-get update
# policy-rc.d exit 101 tells invoke-rc.d not to start services during the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created_policy=1
fi
set +e
apt-get install -y --no-install-recommends prometheus prometheus-alertmanager
rc=$?
set -e
if [ "$created_policy" -eq 1 ]; then
    rm -f "$policy"
fi
if [ "$rc" -ne 0 ]; then
    echo "ensure_prometheus: apt-get install failed (rc=$rc)" >&2
    exit "$rc"
fi

# Stop exactly the daemons the package scripts may have started (not pre-existing ones).
for pid in $(daemon_pids); do
    case " $pids_before " in
        *" $pid "*) ;;
        *) echo "ensure_prometheus: stopping daemon started by the package install (pid $pid)"
           kill "$pid" 2>/dev/null || true ;;
    esac
done

for bin in "${required[@]}"; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "ensure_prometheus: $bin still not found after install" >&2
        exit 1
    fi
done
echo "ensure_prometheus: installed: $(command -v promtool) ($(promtool --version 2>&1 | head -n1))"
