# shellcheck shell=bash
# Prometheus from Debian's `prometheus` package, for deploy/local/stack and
# scripts/check-observability. Source it after common.sh (needs lf_log/lf_die).
#
# Only the binaries are used (`prometheus`, `promtool`); this stack runs its own
# instance with its own config and data under .local/prometheus. The package's
# system service is not wanted: it is kept from starting during the install
# (policy-rc.d) and stopped/disabled afterwards if it runs anyway.

PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
LF_PROMETHEUS_BIN="${PROMETHEUS_BIN:-/usr/bin/prometheus}"
LF_PROMTOOL_BIN="${PROMTOOL_BIN:-/usr/bin/promtool}"

lf_prometheus_installed() { [ -x "$LF_PROMETHEUS_BIN" ] && [ -x "$LF_PROMTOOL_BIN" ]; }

# Stops and disables the package's own service, if any. Best effort: containers
# often have neither a running systemd nor a working `service`.
lf_prometheus_disable_system_service() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
    if [ -x /etc/init.d/prometheus ]; then
        /etc/init.d/prometheus stop >/dev/null 2>&1 || true
        if command -v update-rc.d >/dev/null 2>&1; then update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
    fi
    # A daemon still running with the package's defaults (no --config.file, or the package's
    # /etc/prometheus/prometheus.yml) is stopped by pid. Every deploy/local/stack instance
    # passes its own --config.file, so no clone's stack is touched.
    local f pid args
    for f in $(grep -lzxF -- /usr/bin/prometheus /proc/[0-9]*/cmdline 2>/dev/null || true); do
        pid="${f#/proc/}"; pid="${pid%/cmdline}"
        args="$( { tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null)" || continue
        if grep -qx -- '--config.file=/etc/prometheus/prometheus.yml' <<<"$args" || ! grep -q -- '^--config.file' <<<"$args"; then
            lf_log "stopping the prometheus package's own daemon (pid $pid) so that port $PROMETHEUS_PORT is free"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
}

_lf_install_prometheus_locked() {
    lf_prometheus_installed && return 0
    if [ "$(id -u)" != 0 ]; then
        lf_die "prometheus/promtool not found: install Debian's package as root: apt-get install -y --no-install-recommends prometheus (or set PROMETHEUS_BIN/PROMTOOL_BIN)"
    fi
    command -v apt-get >/dev/null 2>&1 || lf_die "prometheus not found and no apt-get: install Prometheus 2.x (prometheus + promtool)"
    lf_log "installing Debian's prometheus package (apt-get, no recommends) ..."
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [ ! -e "$policy" ]; then
        # 101 = "action not allowed": the package's postinst must not start its service.
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    local rc=0
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >&2; then
        lf_log "apt-get install failed; refreshing the package lists once and retrying ..."
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >&2; } || rc=1
    fi
    [ -z "$added_policy" ] || rm -f "$policy"
    [ "$rc" = 0 ] || lf_die "apt-get install prometheus failed (see output above)"
    lf_prometheus_disable_system_service
    lf_prometheus_installed || lf_die "prometheus installed but $LF_PROMETHEUS_BIN / $LF_PROMTOOL_BIN missing"
}
# Installs Debian's prometheus package if prometheus/promtool are missing; a no-op otherwise.
lf_install_prometheus() { lf_prometheus_installed || lf_with_cache_lock _lf_install_prometheus_locked; }
