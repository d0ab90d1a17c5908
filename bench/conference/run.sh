#!/usr/bin/env bash
# Conference benchmark: the Iris conference unit vs Janus's videoroom plugin, same load, same
# machine, RUNS interleaved rounds (default 1), server and load generator pinned to different cores.
#
#   bench/conference/run.sh                          # build (release) if needed, both servers
#   PUBLISHERS=6 SUBSCRIBERS=24 bench/conference/run.sh
#   RUNS=3 bench/conference/run.sh                   # 3 interleaved rounds (iris, janus, iris, …), medians
#
# The load (crates/conference-loadgen, str0m): PUBLISHERS publishers, each sending Opus-sized
# audio (50 packets/s) and VP8-sized 3-layer simulcast (180p/360p/720p at 100/300/800 kbit/s,
# 30 frames/s), and SUBSCRIBERS subscribers receiving every publisher's audio and the LAYER
# layer (m = 360p) of its video, all with real ICE and DTLS-SRTP. Iris is driven over
# XMPP-over-WebSocket (a bubble, its conference IQs), Janus over its HTTP API (videoroom join,
# publish, subscribe, configure substream). Janus only gathers candidates on non-loopback
# interfaces, so the servers run in a scratch network namespace with a veth address
# (10.213.0.1), the load generator at the other end of the veth pair (NET below).
#
# Reports, per server: forwarded packets/s (media packets the subscribers decrypted), server
# CPU seconds in the window (/proc/PID/stat utime+stime), packets per CPU-second, the latency
# the server adds, p50/p99 (from the publisher's send_to of a frame's last packet to its arrival
# in the subscriber's socket, kernel stamp, one clock), frame and packet loss; then
# the ratio Iris/Janus. Env: PUBLISHERS (4), SUBSCRIBERS (16), LAYER (m), WARMUP (3),
# DURATION (20), RUNS (1), SERVER_CPUS (0), LOADGEN_CPUS (1), SERVERS ("iris janus"), SINGLE_PORT
# (Iris: 1 = one UDP port, 0 = one port per participant), BUSY_POLL (0; 1 = subscribers poll
# their sockets without sleeping, so neither server pays for waking the load generator's
# threads over loopback), NET (veth, the default: the load generator gets its own namespace
# and address behind a veth pair whose receive side is steered (RPS) to the receiving side's
# cores, as a NIC hands packets to the host that receives them; loopback: server and load
# generator share one address in one namespace, so each datagram is delivered inside the
# sender's sendmsg, waking of the receiving thread included), SKIP_BUILD=1, IRIS_BIN, LOADGEN.
# Needs: Debian packages janus, iproute2, util-linux (taskset), python3; root (netns).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PUBLISHERS="${PUBLISHERS:-4}"
SUBSCRIBERS="${SUBSCRIBERS:-16}"
LAYER="${LAYER:-m}"
WARMUP="${WARMUP:-3}"
DURATION="${DURATION:-20}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
SERVERS="${SERVERS:-iris janus}"
RUNS="${RUNS:-1}"
SINGLE_PORT="${SINGLE_PORT:-1}"
BUSY_POLL="${BUSY_POLL:-0}"
poll_flag=()
if [ "$BUSY_POLL" = 1 ]; then poll_flag=(--busy-poll); fi
NET="${NET:-veth}"
case "$NET" in veth | loopback) ;; *) echo "NET must be veth or loopback, not $NET" >&2; exit 2 ;; esac
PASSWORD=bench-password
IP=10.213.0.1
PORT=38443
JANUS_PORT=38088
ns="cbench-$$"
gen_ns="cbench-gen-$$"
work="$(mktemp -d /tmp/iris-conf-bench.XXXXXX)"
server_pid=""

for bin in taskset ip janus python3; do
    command -v "$bin" >/dev/null || { echo "missing $bin" >&2; exit 1; }
done

stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
cleanup() {
    stop_server
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$gen_ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip link add cb0 type veth peer name cb1
in_ns ip addr add "$IP/24" dev cb0
in_ns ip link set cb0 up
# A CPU list ("0", "0,2", "1-3") as the hexadecimal mask rps_cpus takes.
cpu_mask() { python3 -c 'import sys
m = 0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    for c in range(int(a), int(b or a) + 1):
        m |= 1 << c
print(format(m, "x"))' "$1"; }
if [ "$NET" = veth ]; then
    GEN_IP=10.213.0.2
    HTTP_IP="$IP"
    ip netns add "$gen_ns"
    in_ns ip link set cb1 netns "$gen_ns"
    ip netns exec "$gen_ns" ip link set lo up
    ip netns exec "$gen_ns" ip addr add "$GEN_IP/24" dev cb1
    ip netns exec "$gen_ns" ip link set cb1 up
    in_ns sh -c "echo $(cpu_mask "$SERVER_CPUS") > /sys/class/net/cb0/queues/rx-0/rps_cpus"
    ip netns exec "$gen_ns" sh -c "echo $(cpu_mask "$LOADGEN_CPUS") > /sys/class/net/cb1/queues/rx-0/rps_cpus"
    gen_exec() { ip netns exec "$gen_ns" "$@"; }
else
    in_ns ip link set cb1 up
    GEN_IP="$IP"
    HTTP_IP=127.0.0.1
    gen_exec() { in_ns "$@"; }
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p iris -p iris-conference-loadgen)
fi
release="${CARGO_TARGET_DIR:-$root/target}/release"
IRIS_EXE="${IRIS_BIN:-$release/iris}"
unset IRIS_BIN # iris reads every IRIS_* variable as configuration
LOADGEN="${LOADGEN:-$release/conference-loadgen}"
participants=$((PUBLISHERS + SUBSCRIBERS))

# The measured process is the server itself (ip netns exec and taskset exec it).
wait_port() {
    for _ in $(seq 1 300); do
        if in_ns bash -c "exec 3<>/dev/tcp/$HTTP_IP/$1" 2>/dev/null; then
            echo "server pid $server_pid ($(cat "/proc/$server_pid/comm" 2>/dev/null))"
            return 0
        fi
        sleep 0.1
    done
    echo "server did not listen on $1" >&2
    return 1
}

loadgen() {
    gen_exec taskset -c "$LOADGEN_CPUS" "$LOADGEN" --publishers "$PUBLISHERS" --subscribers "$SUBSCRIBERS" \
        --layer "$LAYER" --warmup-secs "$WARMUP" --duration-secs "$DURATION" --ip "$GEN_IP" "${poll_flag[@]}" \
        --server-pid "$server_pid" "$@"
}

run_iris() {
    local dir="$work/iris-$round"; mkdir -p "$dir"
    export IRIS_DOMAIN=localhost IRIS_HTTP__LISTEN="[\"$HTTP_IP:$PORT\"]" IRIS_HTTP__PLAIN_LISTEN="[]" \
        IRIS_XMPP__C2S_LISTEN="[]" IRIS_XMPP__DIRECT_TLS_LISTEN="[]" \
        IRIS_RELAY__UDP_LISTEN="[\"127.0.0.1:0\"]" IRIS_RELAY__TCP_LISTEN="[]" IRIS_RELAY__RELAY_IPS="[\"127.0.0.1\"]" \
        IRIS_CONFERENCE__BIND="$IP" IRIS_CONFERENCE__MAX_PARTICIPANTS=$((participants + 1))
    if [ "$SINGLE_PORT" = 1 ]; then export IRIS_CONFERENCE__SINGLE_PORT=0; fi
    for i in $(seq 0 $((participants - 1))); do echo "bench$i@localhost"; done |
        xargs -I{} "$IRIS_EXE" user add {} --password "$PASSWORD" --data-dir "$dir" >/dev/null
    ip netns exec "$ns" taskset -c "$SERVER_CPUS" "$IRIS_EXE" serve --data-dir "$dir" > "$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_port "$PORT"
    loadgen --server iris --url "wss://$HTTP_IP:$PORT/xmpp-websocket" --room bench \
        --user-prefix bench --password "$PASSWORD" --json "$work/iris-$round.json"
    stop_server
}

run_janus() {
    local dir="$work/janus-$round"; mkdir -p "$dir"
    for f in "$here"/janus/*.jcfg; do
        sed -e "s#@DIR@#$dir#g" -e "s#@RTP_MIN@#20000#" -e "s#@RTP_MAX@#40000#" \
            -e "s#@HTTP_PORT@#$JANUS_PORT#" -e "s#@HTTP_IP@#$HTTP_IP#" \
            -e "s#@HTTP_IF@#$([ "$NET" = veth ] && echo cb0 || echo lo)#" "$f" > "$dir/$(basename "$f")"
    done
    ip netns exec "$ns" taskset -c "$SERVER_CPUS" janus -F "$dir" -C "$dir/janus.jcfg" -o > "$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_port "$JANUS_PORT"
    loadgen --server janus --url "http://$HTTP_IP:$JANUS_PORT/janus" --room 1234 --json "$work/janus-$round.json"
    stop_server
}

echo "load: $PUBLISHERS publishers x $SUBSCRIBERS subscribers, layer $LAYER, ${DURATION}s window after ${WARMUP}s warm-up;" \
    "server on CPU $SERVER_CPUS, load generator on CPU $LOADGEN_CPUS, network $NET"
for round in $(seq 1 "$RUNS"); do
    for s in $SERVERS; do
        echo "== $s (round $round of $RUNS, load average $(cut -d' ' -f1-3 /proc/loadavg))"
        "run_$s"
    done
done

python3 - "$work" <<'PY'
import glob, json, os, statistics, sys
work = sys.argv[1]
r = {}
for s in ("iris", "janus"):
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, s + "-*.json")))]
    if not runs:
        continue
    # Medians over the rounds, each figure on its own.
    med = lambda f: statistics.median(f(x) for x in runs)
    lat = lambda k: {q: med(lambda x: x[k][q]) for q in ("p50", "p99")}
    r[s] = {"pps": med(lambda x: x["pps"]), "server_cpu_s": med(lambda x: x["server_cpu_s"]),
            "pps_per_cpu_s": med(lambda x: x["pps_per_cpu_s"] or 0),
            "video_latency_us": lat("video_latency_us"), "audio_latency_us": lat("audio_latency_us"),
            "video_write_latency_us": lat("video_write_latency_us"),
            "frame_loss": med(lambda x: x["frame_loss"])}
    if len(runs) > 1:
        print(f"{s} pkt per CPU-second per round: {[round(x['pps_per_cpu_s'] or 0) for x in runs]}")
print()
if any(len(glob.glob(os.path.join(work, s + "-*.json"))) > 1 for s in r):
    print("medians over the rounds:")
print(f"{'server':8} {'fwd pkt/s':>10} {'CPU s':>7} {'pkt/CPU-s':>10} {'video p50/p99 us':>18} {'audio p50/p99 us':>18} {'frame loss':>10} {'from write: video':>18}")
for s, x in r.items():
    v, a, w = x["video_latency_us"], x["audio_latency_us"], x["video_write_latency_us"]
    print(f"{s:8} {x['pps']:10.0f} {x['server_cpu_s']:7.2f} {x['pps_per_cpu_s'] or 0:10.0f} "
          f"{str(v['p50']) + ' / ' + str(v['p99']):>18} {str(a['p50']) + ' / ' + str(a['p99']):>18} {100 * x['frame_loss']:9.3f}% "
          f"{str(w['p50']) + ' / ' + str(w['p99']):>18}")
print("(latency: added by the server, from the publisher's send_to to the arrival in the subscriber's socket;"
      " 'from write' also counts the load generator's packetizing and thread scheduling)")
if "iris" in r and "janus" in r and r["janus"]["pps_per_cpu_s"]:
    ratio = r["iris"]["pps_per_cpu_s"] / r["janus"]["pps_per_cpu_s"]
    print(f"\nIris/Janus forwarded packets per CPU-second: {ratio:.2f}x (goal >= 1.5x)")
if "iris" in r:
    print(f"Iris vs LiveKit's published 56-75k forwarded packets/s per core: {r['iris']['pps_per_cpu_s'] or 0:.0f}")
PY
echo "(raw JSON in $work)"
