# shellcheck shell=bash
# Background processes with pidfiles for hack/control-plane.sh. Source it after
# control-plane-common.sh. A component NAME has
#   $KNODE_CP_RUN_DIR/NAME.pid   its pid
#   $KNODE_CP_LOG_DIR/NAME.log   its stdout and stderr (appended)
# A pidfile is trusted only when /proc/PID/exe is the expected binary and the
# command line carries the component's marker argument, so a recycled pid is
# never signalled.

# proc_pid NAME BIN MARKER: prints the pid if NAME runs, else fails.
proc_pid() {
    local name=$1 bin=$2 marker=$3 pidfile="$KNODE_CP_RUN_DIR/$1.pid" pid exe
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ && -e /proc/$pid ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    [[ $exe == "$(readlink -m "$bin")" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$marker" || return 1
    echo "$pid"
}

# proc_start NAME BIN ARGS...: starts BIN in its own session, detached.
proc_start() {
    local name=$1 bin=$2 log pid
    shift 2
    mkdir -p "$KNODE_CP_RUN_DIR" "$KNODE_CP_LOG_DIR"
    log="$KNODE_CP_LOG_DIR/$name.log"
    printf '\n===== %s starting %s\n' "$(date -Is)" "$bin $*" >>"$log"
    # The daemon must not inherit the caller's other descriptors: a `flock` lock fd
    # (e.g. /tmp/knode-e2e.lock around a test that runs `up`) held open by a
    # long-running daemon would keep that lock taken until the daemon exits.
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid "$bin" "$@" </dev/null >>"$log" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$KNODE_CP_RUN_DIR/$name.pid"
    say "started $name (pid $pid, log $log)"
}

# proc_stop NAME BIN MARKER: SIGTERM, up to 20 s, then SIGKILL.
proc_stop() {
    local name=$1 bin=$2 marker=$3 pid i
    if ! pid=$(proc_pid "$name" "$bin" "$marker"); then
        rm -f "$KNODE_CP_RUN_DIR/$name.pid"
        return 0
    fi
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        [[ -e /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
        warn "$name (pid $pid) did not exit in 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.3
    fi
    rm -f "$KNODE_CP_RUN_DIR/$name.pid"
}

# proc_strays BIN MARKER: pids whose executable is BIN and whose command line
# carries MARKER (e.g. processes whose pidfile was lost).
proc_strays() {
    local bin marker=$2 p pid exe
    bin=$(readlink -m "$1")
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        [[ ${exe% (deleted)} == "$bin" ]] || continue
        tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$marker" || continue
        echo "$pid"
    done
}

# proc_kill_strays NAME BIN MARKER: SIGTERM, up to 10 s, then SIGKILL.
proc_kill_strays() {
    local name=$1 pid pids i
    pids=$(proc_strays "$2" "$3")
    [[ -n $pids ]] || return 0
    for pid in $pids; do
        warn "stopping stray $name process $pid (no pidfile)"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 100; i++)); do
        [[ -n $(proc_strays "$2" "$3") ]] || return 0
        sleep 0.1
    done
    for pid in $(proc_strays "$2" "$3"); do
        warn "stray $name process $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_for() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
