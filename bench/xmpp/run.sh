#!/usr/bin/env bash
# XMPP benchmark: Iris vs Prosody vs ejabberd, same load over WSS, archive on disk, pinned cores.
#
#   bench/xmpp/run.sh                       # build (release) if needed, all three servers
#   SERVERS="iris prosody" CLIENTS=20 bench/xmpp/run.sh
#
# Needs the Debian packages prosody, lua-dbi-sqlite3, ejabberd, erlang-p1-sqlite3, sqlite3,
# openssl and taskset (util-linux). Each server runs on loopback with a scratch directory,
# gets the users (Iris: `iris user add`; Prosody and ejabberd: in-band registration), takes the
# same xmpp-loadgen run (idle sessions → logins/s and memory per session, with SCRAM — SHA-256
# where offered, else SHA-1 — and again with PLAIN; 1:1 chat with XEP-0198 acks, MUC fan-out),
# and is stopped by its PID. RUNS repeats the whole round; the table shows medians.
# Env: CLIENTS (50), MESSAGES (100), IDLE (200 sessions per batch), IDLE_BATCHES (2),
# IDLE_RESOURCES (4 sessions per user), SETTLE (5 s before each memory reading), MUC_SENDERS (5), MUC_MESSAGES (40), WINDOW (10),
# RUNS (1), SERVER_CPUS (0), LOADGEN_CPUS (1), SERVERS ("iris prosody ejabberd"),
# SCENARIOS ("idle,idle-plain,chat,muc"), SKIP_BUILD=1, IRIS_BIN (target/release/iris),
# IRIS_BASE_BIN (server "irisbase": another iris binary, for before/after).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CLIENTS="${CLIENTS:-50}"
MESSAGES="${MESSAGES:-100}"
IDLE="${IDLE:-200}"
IDLE_RESOURCES="${IDLE_RESOURCES:-4}"
IDLE_BATCHES="${IDLE_BATCHES:-2}"
SETTLE="${SETTLE:-5}"
MUC_SENDERS="${MUC_SENDERS:-5}"
MUC_MESSAGES="${MUC_MESSAGES:-40}"
WINDOW="${WINDOW:-10}"
RUNS="${RUNS:-1}"
SCENARIOS="${SCENARIOS:-idle,idle-plain,chat,muc}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
SERVERS="${SERVERS:-iris prosody ejabberd}"
PASSWORD=bench-password
PORT=35443
work="$(mktemp -d /tmp/iris-xmpp-bench.XXXXXX)"
server_pid=""
measured=""

for bin in taskset openssl sqlite3; do
    command -v "$bin" >/dev/null || { echo "missing $bin" >&2; exit 1; }
done

stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    # ejabberd's Erlang VM may outlive the ejabberdctl wrapper: stop it by its own PID
    if [ -n "$measured" ] && kill -0 "$measured" 2>/dev/null; then
        kill "$measured" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$measured" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$measured" 2>/dev/null || true
    fi
    server_pid=""
    measured=""
}
trap stop_server EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p iris -p iris-xmpp-loadgen)
fi
release="${CARGO_TARGET_DIR:-$root/target}/release"
IRIS_BIN="${IRIS_BIN:-$release/iris}"
IRIS_BASE_BIN="${IRIS_BASE_BIN:-}"
# not for the servers: iris reads every IRIS_* variable as configuration
export -n IRIS_BIN IRIS_BASE_BIN
LOADGEN="${LOADGEN:-$release/xmpp-loadgen}"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,DNS:conference.localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/key.pem" "$work/cert.pem" > "$work/combined.pem"

render() { sed -e "s#@DIR@#$1#g" -e "s#@CERTS@#$work#g" -e "s#@PORT@#$PORT#g" "$2" > "$3"; }

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server did not listen on $PORT" >&2
    return 1
}

start_iris() {
    local dir="$work/${1:-iris}"; mkdir -p "$dir"
    export IRIS_DOMAIN=localhost IRIS_HTTP__LISTEN="[\"127.0.0.1:$PORT\"]" IRIS_HTTP__PLAIN_LISTEN="[]" \
        IRIS_XMPP__C2S_LISTEN="[]" IRIS_XMPP__DIRECT_TLS_LISTEN="[]" IRIS_XMPP__MAX_SESSIONS_PER_USER=100 \
        IRIS_RELAY__UDP_LISTEN="[\"127.0.0.1:0\"]" IRIS_RELAY__TCP_LISTEN="[]" IRIS_RELAY__RELAY_IPS="[\"127.0.0.1\"]"
    # the users are created once (argon2id per user is slow) and copied into every run
    if [ ! -d "$work/iris-users" ]; then
        for i in $(seq 0 $((USERS - 1))); do
            echo "user$i@localhost"
        done | xargs -I{} "$IRIS_BIN" user add {} --password "$PASSWORD" --data-dir "$work/iris-users" >/dev/null
    fi
    cp -a "$work/iris-users/." "$dir/"
    taskset -c "$SERVER_CPUS" "$IRIS_BIN" serve --data-dir "$dir" > "$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_port
    url="wss://127.0.0.1:$PORT/xmpp-websocket"; register=""
}

# "irisbase": Iris again from IRIS_BASE_BIN (e.g. a build of the previous commit), for
# before/after figures from the same invocation.
start_irisbase() {
    local keep="$IRIS_BIN"
    IRIS_BIN="${IRIS_BASE_BIN:?IRIS_BASE_BIN names the other iris binary}"
    start_iris irisbase
    IRIS_BIN="$keep"
}

start_prosody() {
    local dir="$work/prosody"; mkdir -p "$dir"
    render "$dir" "$here/prosody.cfg.lua" "$dir/prosody.cfg.lua"
    taskset -c "$SERVER_CPUS" prosody --config "$dir/prosody.cfg.lua" > "$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_port
    url="wss://127.0.0.1:$PORT/xmpp-websocket"; register="--register"
}

start_ejabberd() {
    local dir="$work/ejabberd"; mkdir -p "$dir/spool"
    render "$dir" "$here/ejabberd.yml" "$dir/ejabberd.yml"
    sqlite3 "$dir/ejabberd.db" < /usr/share/ejabberd/sql/lite.new.sql
    # Debian's /etc/ejabberd/ejabberdctl.cfg would point back at /etc/ejabberd/ejabberd.yml
    echo 'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"' > "$dir/ejabberdctl.cfg"
    chmod 755 "$work"
    chown -R ejabberd: "$dir" "$work/combined.pem"
    # foreground node as the ejabberd user; its beam.smp is the measured process
    # runuser gives the ejabberd user a soft limit of 1024 open files: raise it, as for the
    # other servers (each idle session is one socket)
    taskset -c "$SERVER_CPUS" runuser -u ejabberd -- sh -c 'ulimit -n "$(ulimit -Hn)" && exec "$@"' sh env HOME="$dir" \
        /usr/sbin/ejabberdctl --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" --logs "$dir" --spool "$dir/spool" --node xbench@localhost foreground \
        > "$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_port
    url="wss://127.0.0.1:$PORT/xmpp-websocket"; register="--register"
}

# The process whose memory is measured (ejabberd: the Erlang VM under ejabberdctl).
measured_pid() {
    local p="$server_pid"
    for _ in 1 2 3 4; do
        [ "$(cat /proc/$p/comm 2>/dev/null)" = beam.smp ] && break
        local c; c=$(pgrep -P "$p" | head -n1) || break
        [ -n "$c" ] || break
        p=$c
    done
    echo "$p"
}

# users: CLIENTS, or the idle scenario's batches of IDLE / IDLE_RESOURCES users if more
USERS=$CLIENTS
case ",$SCENARIOS," in *,idle*)
    idle_users=$((IDLE_BATCHES * ((IDLE + IDLE_RESOURCES - 1) / IDLE_RESOURCES)))
    [ "$idle_users" -gt "$USERS" ] && USERS=$idle_users ;;
esac

results="$work/results.txt"
: > "$results"
for run in $(seq 1 "$RUNS"); do
  for s in $SERVERS; do
    echo "== $s (run $run of $RUNS)"
    rm -rf "${work:?}/$s"
    "start_$s"
    sleep 1
    measured=$(measured_pid)
    taskset -c "$LOADGEN_CPUS" timeout 900 "$LOADGEN" --url "$url" --domain localhost \
        --password "$PASSWORD" $register --clients "$CLIENTS" --messages "$MESSAGES" --idle "$IDLE" \
        --idle-resources "$IDLE_RESOURCES" --idle-batches "$IDLE_BATCHES" --settle-secs "$SETTLE" \
        --muc-senders "$MUC_SENDERS" --muc-messages "$MUC_MESSAGES" --window "$WINDOW" \
        --mechanism scram --scenarios "$SCENARIOS" \
        --server-pid "$measured" 2>&1 | tee "$work/$s.out" || echo "loadgen failed against $s" >&2
    grep '^RESULT' "$work/$s.out" | sed "s/^RESULT /server=$s run=$run /" >> "$results"
    stop_server
  done
done

python3 - "$results" <<'PY'
import sys, collections, statistics
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    rows[kv["server"]][kv["scenario"]].append(kv)
servers = list(rows)
def g(s, sc, k):
    vals = []
    for kv in rows[s][sc]:
        try: vals.append(float(kv[k]))
        except (KeyError, ValueError): pass
    return statistics.median(vals) if vals else float("nan")
metrics = [("chat msg/s", "chat", "msgs_per_s"), ("chat p50 ms", "chat", "p50_ms"),
           ("chat p99 ms", "chat", "p99_ms"), ("muc msg/s", "muc", "msgs_per_s"),
           ("muc deliveries/s", "muc", "deliveries_per_s"), ("muc p50 ms", "muc", "p50_ms"),
           ("muc p99 ms", "muc", "p99_ms"), ("logins/s (SCRAM)", "idle", "logins_per_s"),
           ("logins/s (PLAIN)", "idle-plain", "logins_per_s"),
           ("KiB/idle session", "idle", "kib_per_idle_session"),
           ("KiB/idle session, after the 1st batch", "idle", "kib_marginal")]
for s in servers:
    mech = {kv.get("sasl") for kv in rows[s]["idle"]}
    runs = max((len(v) for v in rows[s].values()), default=0)
    print(f"{s}: SCRAM logins used {', '.join(sorted(m for m in mech if m))}; {runs} run(s), medians")
print("\n| metric | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for name, sc, k in metrics:
    print(f"| {name} | " + " | ".join(f"{g(s, sc, k):.1f}" for s in servers) + " |")
if "iris" in rows:
    print()
    for other in [s for s in servers if s != "iris"]:
        for name, sc, k in metrics:
            a, b = g("iris", sc, k), g(other, sc, k)
            if b and b == b and a == a:
                print(f"iris/{other} {name}: {a / b:.2f}x")
PY
echo "raw results: $results"
