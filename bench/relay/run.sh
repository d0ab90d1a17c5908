#!/usr/bin/env bash
# Relay benchmark: Iris's relay vs coturn, same load, same port range, pinned cores.
#
#   bench/relay/run.sh                 # build (release) if needed, run every scenario
#   DURATION=5 SCENARIOS="audio-blast" bench/relay/run.sh
#
# Installs nothing: needs `turnserver` (Debian package coturn) and `taskset` (util-linux).
# Each run is bounded (DURATION seconds, at most 60, plus setup) and every process it starts
# is stopped by its PID. Before each run it waits (up to QUIET_WAIT seconds, 60) until the
# machine is idle, since other work on the same cores skews both throughput and CPU time;
# with REPEAT=N (1) each pair of runs is repeated, interleaved, and the median (by packets
# per server CPU-second) is shown. Env: DURATION (8), ALLOCATIONS (200), SERVER_CPUS (0),
# LOADGEN_CPUS (1), SCENARIOS ("audio-20k audio-100k video-50k audio-max video-max"), SKIP_BUILD=1,
# UCLIENT=0 to skip coturn's own turnutils_uclient reference run, IRIS_BASE=/path/to/an/older/
# relay_server to add it as a third server "base" (before/after comparisons), IRIS_BASE_CONFIG
# to run "base" with another config file (A/B of a config key with the same binary). Scenarios
# audio-NNk / video-NNk pace any rate; cap-NNk does so for lone audio packets sent through
# io_uring (capacity sweeps past what the generator can offer with a syscall per packet).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-8}"
ALLOCATIONS="${ALLOCATIONS:-200}"
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
SCENARIOS="${SCENARIOS:-audio-20k audio-100k video-50k audio-max video-max}"
UCLIENT="${UCLIENT:-1}"
REPEAT="${REPEAT:-1}"
QUIET_WAIT="${QUIET_WAIT:-60}"
PORT=34780
SECRET=bench-secret
work="$(mktemp -d /tmp/iris-relay-bench.XXXXXX)"
server_pid=""

for bin in turnserver taskset; do
    command -v "$bin" >/dev/null || { echo "missing $bin (apt-get install -y coturn util-linux)" >&2; exit 1; }
done

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p iris-relay --example relay_server --example loadgen)
fi
target="${CARGO_TARGET_DIR:-$root/target}/release/examples"
server_cores=$(taskset -c "$SERVER_CPUS" nproc)

# scenario -> loadgen arguments
args_for() {
    case "$1" in
        # Paced: one packet per allocation in turn, as media clients send.
        audio-20k) echo "--size 160 --rate 20000" ;;
        audio-100k) echo "--size 160 --rate 100000" ;;
        video-50k) echo "--size 1200 --rate 50000" ;;
        # Saturation: 32 packets per allocation and sendmmsg, as fast as the generator goes
        # (the generator's core also carries the kernel's loopback delivery to the server).
        audio-max) echo "--size 160 --rate 0 --batch 32" ;;
        video-max) echo "--size 1200 --rate 0 --batch 32" ;;
        # Video frames: 8 packets per allocation back to back, paced (same-destination runs).
        video-50k-burst) echo "--size 1200 --rate 50000 --burst 8" ;;
        # Peer -> client: the peer sends to the relayed addresses, the clients count.
        audio-100k-down) echo "--size 160 --rate 100000 --direction down" ;;
        video-50k-down) echo "--size 1200 --rate 50000 --direction down" ;;
        video-50k-burst-down) echo "--size 1200 --rate 50000 --burst 8 --direction down" ;;
        audio-max-down) echo "--size 160 --rate 0 --batch 32 --direction down" ;;
        # Capacity sweeps of lone audio packets past what one sendmmsg per client socket can
        # offer (about 125 k/s here): the generator sends each pacing round through io_uring.
        cap-*k) echo "--size 160 --ring 1 --rate $(( ${1//[^0-9]/} * 1000 ))" ;;
        # Any other paced rate, for capacity sweeps: audio-NNk, video-NNk.
        audio-*k) echo "--size 160 --rate $(( ${1//[^0-9]/} * 1000 ))" ;;
        video-*k) echo "--size 1200 --rate $(( ${1//[^0-9]/} * 1000 ))" ;;
        *) echo "unknown scenario $1" >&2; exit 1 ;;
    esac
}

# Idle percentage of all CPUs over half a second.
idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    echo $(( total > 0 ? 100 * (b[4] - a[4] + b[5] - a[5]) / total : 100 ))
}

# Waits until the machine is at least 90 % idle (at most QUIET_WAIT seconds); prints idle %.
wait_quiet() {
    local idle deadline=$((SECONDS + QUIET_WAIT))
    idle=$(idle_pct)
    while [ "$idle" -lt 90 ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 2
        idle=$(idle_pct)
    done
    echo "$idle"
}

wait_port() {
    for _ in $(seq 50); do
        if ss -Huln "sport = :$PORT" | grep -q .; then return 0; fi
        sleep 0.1
    done
    echo "server did not listen on $PORT" >&2
    return 1
}

start_server() {
    case "$1" in
        coturn)
            taskset -c "$SERVER_CPUS" turnserver -c "$here/turnserver.conf" \
                --relay-threads="$server_cores" --log-file="$work/coturn.log" \
                >"$work/coturn.out" 2>&1 &
            ;;
        iris)
            taskset -c "$SERVER_CPUS" "$target/relay_server" "$here/iris.toml" \
                >"$work/iris.out" 2>&1 &
            ;;
        base)
            taskset -c "$SERVER_CPUS" "$IRIS_BASE" "${IRIS_BASE_CONFIG:-$here/iris.toml}" \
                >"$work/base.out" 2>&1 &
            ;;
    esac
    server_pid=$!
    wait_port
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sleep 0.5
}

servers="coturn iris"
if [ -n "${IRIS_BASE:-}" ]; then servers="coturn base iris"; fi
declare -A result
# Capacity sweeps (cap-NNk, in rising order): a server whose median round lost more than
# 0.1 % at two rates in a row is not run at higher rates (it is past its capacity).
declare -A over=()
median_loss() {
    { grep "^$1 .*label=$2 " "$work/results.txt" || true; } | sed -n 's/.* loss_pct=\([^ ]*\).*/\1/p' | sort -g \
        | awk '{ l[NR] = $0 } END { if (NR) print l[int((NR + 1) / 2)] }'
}
echo "# $(nproc) cores; server on CPU $SERVER_CPUS ($server_cores thread(s)), load generator on CPU $LOADGEN_CPUS;" \
     "$ALLOCATIONS allocations, ${DURATION}s per run, $REPEAT repeat(s); $(turnserver --version 2>/dev/null | head -1 | sed 's/^/coturn /')"
for scenario in $SCENARIOS; do
    for round in $(seq "$REPEAT"); do
        for server in $servers; do
            if [[ $scenario == cap-* ]] && [ "${over[$server]:-0}" -ge 2 ]; then continue; fi
            idle=$(wait_quiet)
            load=$(cut -d' ' -f1 /proc/loadavg)
            start_server "$server"
            # shellcheck disable=SC2046
            line=$(timeout $((DURATION + 60)) taskset -c "$LOADGEN_CPUS" "$target/loadgen" \
                --server "127.0.0.1:$PORT" --secret "$SECRET" --allocations "$ALLOCATIONS" \
                --duration "$DURATION" --server-pid "$server_pid" --label "$server" \
                $(args_for "$scenario") | grep '^RESULT' || echo "RESULT failed=1")
            stop_server
            echo "$scenario round=$round idle_before=$idle load_before=$load $line" >>"$work/results.txt"
        done
    done
    for server in $servers; do
        # Median run by packets per server CPU-second.
        result["$scenario/$server"]=$({ grep "^$scenario .*label=$server " "$work/results.txt" || true; } \
            | sed 's/.*pkts_per_cpu_s=\([^ ]*\).*/\1 &/' | sort -n \
            | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }' | cut -d' ' -f2-)
        if [[ $scenario == cap-* ]] && [ -n "${result[$scenario/$server]}" ]; then
            if awk -v l="$(median_loss "$scenario" "$server")" 'BEGIN { exit !(l > 0.1) }'; then
                over[$server]=$(( ${over[$server]:-0} + 1 ))
            else
                over[$server]=0
            fi
        fi
    done
done

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

printf '\n%-12s %-7s %12s %8s %8s %12s %12s %6s %5s\n' scenario server "pkts/s" "loss%" "cpu-s" "pkts/cpu-s" "vs coturn" "idle%" "load"
for scenario in $SCENARIOS; do
    c="${result[$scenario/coturn]}"
    for server in $servers; do
        r="${result[$scenario/$server]}"
        [ -n "$r" ] || continue
        ratio=""
        if [ "$server" != coturn ]; then
            ratio=$(awk -v a="$(field "$r" pkts_per_cpu_s)" -v b="$(field "$c" pkts_per_cpu_s)" \
                -v p="$(field "$r" pps)" -v q="$(field "$c" pps)" \
                'BEGIN { if (b > 0 && q > 0) printf "%.2f/%.2f", p / q, a / b }')
        fi
        printf '%-12s %-7s %12s %8s %8s %12s %12s %6s %5s\n' "$scenario" "$server" \
            "$(field "$r" pps)" "$(field "$r" loss_pct)" "$(field "$r" server_cpu_s)" \
            "$(field "$r" pkts_per_cpu_s)" "$ratio" "$(field "$r" idle_before)" "$(field "$r" load_before)"
    done
done
echo "(vs coturn: relayed pkts/s ratio / pkts per server CPU-second ratio; idle%: machine idle before the run; load: 1-min load average before it)"

# Capacity (cap-NNk scenarios): per server, the highest offered rate up to which every swept
# rate's median round lost at most 0.1 % (and relayed at least 98 % of the rate: a generator
# that fell short offered less than the rate), and its best packets per CPU-second at any rate
# that passed.
caps=$(tr ' ' '\n' <<<"$SCENARIOS" | grep '^cap-' | sort -t- -k2 -n || true)
if [ -n "$caps" ]; then
    echo
    echo "capacity at <= 0.1 % loss (median of $REPEAT round(s) per rate; lone 160-byte packets, sent through io_uring):"
    declare -A cap=() best=()
    for server in $servers; do
        cap[$server]=0; best[$server]=0; ok=1
        for scenario in $caps; do
            r="${result[$scenario/$server]}"
            loss=$(median_loss "$scenario" "$server")
            if [ -z "$r" ] || [ -z "$loss" ] || awk -v l="$loss" 'BEGIN { exit !(l > 0.1) }'; then ok=0; continue; fi
            rate=$(( ${scenario//[^0-9]/} * 1000 ))
            if awk -v p="$(field "$r" pps)" -v r="$rate" 'BEGIN { exit !(p < 0.98 * r) }'; then
                echo "  ($server at $scenario: the generator offered only $(field "$r" pps) pkt/s)"
                ok=0
                continue
            fi
            eff=$(field "$r" pkts_per_cpu_s)
            if [ "$ok" = 1 ]; then cap[$server]=$rate; fi
            best[$server]=$(awk -v a="${best[$server]}" -v b="$eff" 'BEGIN { print (b > a) ? b : a }')
        done
        printf '  %-7s capacity %7s pkt/s   best %7s pkt per CPU-s\n' "$server" "${cap[$server]}" "${best[$server]}"
    done
    for server in $servers; do
        [ "$server" != coturn ] || continue
        awk -v a="${cap[$server]}" -v b="${cap[coturn]}" -v e="${best[$server]}" -v f="${best[coturn]}" -v s="$server" \
            'BEGIN { if (b > 0 && f > 0) printf "  %s vs coturn: capacity %.2fx, best efficiency %.2fx\n", s, a / b, e / f }'
    done
    echo "  (a capacity equal to the highest rate swept is a lower bound: sweep higher rates)"
fi

# coturn's own client as a reference (echo through turnutils_peer), bounded and quick.
if [ "$UCLIENT" = 1 ] && command -v turnutils_uclient >/dev/null && command -v turnutils_peer >/dev/null; then
    echo
    echo "# turnutils_uclient reference: 50 clients x 200 messages of 160 B, echoed by turnutils_peer"
    peer_port=34790
    timeout 120 taskset -c "$LOADGEN_CPUS" turnutils_peer -L 127.0.0.1 -p "$peer_port" >/dev/null 2>&1 &
    peer_pid=$!
    sleep 0.3
    for server in coturn iris; do
        start_server "$server"
        t0=$(date +%s.%N)
        out=$(timeout 30 taskset -c "$LOADGEN_CPUS" turnutils_uclient -m 50 -n 200 -l 160 -z 5 -c \
            -e 127.0.0.1 -r "$peer_port" -u bench -W "$SECRET" -p "$PORT" 127.0.0.1 2>&1 || true)
        t1=$(date +%s.%N)
        stop_server
        sent=$(grep -o 'tot_send_msgs=[0-9]*' <<<"$out" | tail -1 | cut -d= -f2 || true)
        recv=$(grep -o 'tot_recv_msgs=[0-9]*' <<<"$out" | tail -1 | cut -d= -f2 || true)
        rtt=$(grep -o 'Average round trip delay [0-9.]* ms' <<<"$out" | tail -1 || true)
        lost=$(grep -o 'Total lost packets [0-9]* ([0-9.]*%)' <<<"$out" | tail -1 || true)
        printf '%-7s sent=%s recv=%s %s; %s; %.1fs\n' "$server" "${sent:-?}" "${recv:-?}" \
            "${lost:-}" "${rtt:-}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
    done
    kill "$peer_pid" 2>/dev/null || true
    wait "$peer_pid" 2>/dev/null || true
fi
echo "raw results: $work/results.txt"
