#!/usr/bin/env bash
# Enterprise-network lab (issue 6): builds each scenario from Linux network namespaces, veth
# pairs, a bridge as "the Internet", nftables NAT and filtering on per-site routers, a site DNS
# resolver (scripts/lab/dns.mjs) and Debian's tinyproxy, runs `iris serve` in a server namespace
# (443, 80, 3478 as root), checks `iris netcheck`'s verdict from a client namespace, then two
# headless Chromium instances in the client namespaces use the Iris web client through its UI
# (tests/browser/lab-call.mjs): sign in, become contacts, chat both ways, a 1:1 video call that
# one starts and the other answers, media both ways (getStats); in S7 each side's address
# changes in turn mid-call. Prints a table: netcheck verdict, login, chat, time to first media,
# media gaps (S7), selected candidate pair, pass/fail.
#
#   S1 both clients on one LAN          S5 no direct outbound traffic, only an HTTP proxy
#   S2 each client behind its own NAT   (CONNECT to 443 and 80)
#   S3 only TCP 443 and UDP 3478 to     S6 symmetric NAT (fully random source ports)
#      the server                       S7 a client's address changes mid-call
#   S4 no UDP at all
#
# Usage: sudo scripts/lab/lab.sh [S1 … S7]   (default: all). Needs root, ip, nft, tinyproxy,
# node + tests/browser/node_modules (npm ci --prefix tests/browser), /usr/bin/chromium and a
# built `iris` (IRIS=path, default target/debug/iris). Exit status 0 only if every scenario
# passed. Everything it creates carries a unique prefix and is removed on exit (trap).
#
# Addresses: "Internet" 11.0.0.0/24 (server 11.0.0.1 = iris.lab, site routers .11 and .12),
# site LANs 10.1.0.0/24 and 10.2.0.0/24 (router .1 with the site resolver, clients .2; in S7
# they move to .7).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IRIS=${IRIS:-$ROOT/target/debug/iris}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(S1 S2 S3 S4 S5 S6 S7)
P="l$(( $$ % 100000 ))"          # unique prefix (interface names stay under 15 characters)
WORK=$(mktemp -d /tmp/iris-lab-XXXXXX)
SERVER_IP=11.0.0.1
NAME=iris.lab
STEP=${LAB_STEP_TIMEOUT:-20}    # seconds any single setup step may take

for tool in ip nft tinyproxy node; do
  command -v "$tool" >/dev/null || { echo "SKIPPED lab: $tool not installed"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "SKIPPED lab: needs root (network namespaces)"; exit 0; }
[ -x "$IRIS" ] || { echo "lab: $IRIS not built (cargo build -p iris)"; exit 2; }
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || { echo "lab: npm ci --prefix tests/browser first"; exit 2; }

NSS=()
PIDS=()
log() { echo "[lab $(date +%T)] $*" >&2; }
run() { timeout "$STEP" "$@"; }

teardown() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true; done
  PIDS=()
  for ns in "${NSS[@]}"; do
    # Processes still inside a namespace (browsers) end with it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  NSS=()
}
# LAB_KEEP=1 keeps $WORK (server logs, netcheck reports, browser output) for debugging.
trap 'teardown; [ -n "${LAB_KEEP:-}" ] && echo "lab files kept in $WORK" >&2 || rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

netns() { run ip netns add "$1"; NSS+=("$1"); ip -n "$1" link set lo up; }

# veth between namespace $1 (named $2 there) and namespace $3 (named $4 there, master $5).
link() {
  local a="${P}x$RANDOM" b="${P}y$RANDOM"
  run ip link add "$a" type veth peer name "$b"
  ip link set "$a" netns "$1"; ip -n "$1" link set "$a" name "$2"; ip -n "$1" link set "$2" up
  ip link set "$b" netns "$3"; ip -n "$3" link set "$b" name "$4"
  [ -z "${5:-}" ] || ip -n "$3" link set "$4" master "$5"
  ip -n "$3" link set "$4" up
}

# /etc/hosts and /etc/resolv.conf of namespace $1: iris.lab known locally, DNS from $2 (the
# site's resolver) or none at all (an empty resolv.conf: lookups fail at once).
hosts() {
  mkdir -p "/etc/netns/$1"
  printf '127.0.0.1 localhost\n%s %s\n' "$SERVER_IP" "$NAME" > "/etc/netns/$1/hosts"
  if [ -n "${2:-}" ]; then echo "nameserver $2" > "/etc/netns/$1/resolv.conf"; else : > "/etc/netns/$1/resolv.conf"; fi
}

# The site's resolver on router $1's LAN address $2 (scripts/lab/dns.mjs: iris.lab only).
dns() {
  ip netns exec "$1" node "$ROOT/scripts/lab/dns.mjs" "$2" "$NAME" "$SERVER_IP" > "$WORK/$1-dns.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q "on $2:53" "$WORK/$1-dns.log" 2>/dev/null && return 0; sleep 0.1; done
  log "dns on $1 did not start"; cat "$WORK/$1-dns.log" >&2; return 1
}

# A site: router namespace $1 with WAN address $2 and LAN 10.$3.0.0/24 (bridge lan0).
site() {
  netns "$1"
  link "$1" wan0 "$NET" "w$3" br0
  ip -n "$1" addr add "$2/24" dev wan0
  ip -n "$1" link add lan0 type bridge; ip -n "$1" link set lan0 up
  ip -n "$1" addr add "10.$3.0.1/24" dev lan0
  ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1
  hosts "$1"
}

# Client namespace $1 on router $2's LAN 10.$3.0.0/24 with host number $4.
client() {
  netns "$1"
  link "$1" eth0 "$2" "c$4" lan0
  ip -n "$1" addr add "10.$3.0.$4/24" dev eth0
  ip -n "$1" route add default via "10.$3.0.1"
}

# Router $1's NAT and filter: $2 = masquerade options, $3 = forward policy, $4 = forward rules.
firewall() {
  cat > "$WORK/$1.nft" <<NFT
table ip lab {
  chain nat_out { type nat hook postrouting priority 100; oifname "wan0" masquerade $2; }
  chain filter_forward {
    type filter hook forward priority 0; policy $3;
    ct state established,related accept
    $4
  }
}
NFT
  run ip netns exec "$1" nft -f "$WORK/$1.nft"
}

proxy() { # tinyproxy on router $1's LAN address $2:3128, CONNECT to 443 and 80 only.
  cat > "$WORK/$1-tinyproxy.conf" <<CONF
Port 3128
Listen $2
Timeout 120
MaxClients 100
Allow 10.0.0.0/8
LogLevel Warning
ConnectPort 443
ConnectPort 80
CONF
  ip netns exec "$1" tinyproxy -d -c "$WORK/$1-tinyproxy.conf" > "$WORK/$1-tinyproxy.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do ip netns exec "$1" bash -c "echo > /dev/tcp/$2/3128" 2>/dev/null && return 0; sleep 0.1; done
  log "tinyproxy did not start"; return 1
}

server() {
  netns "$SRV"
  link "$SRV" wan0 "$NET" srv br0
  ip -n "$SRV" addr add "$SERVER_IP/24" dev wan0
  local data="$WORK/data-$1"
  local env=(IRIS_DOMAIN=$NAME IRIS_RELAY__PUBLIC_NAME=$NAME "IRIS_RELAY__RELAY_IPS=[\"$SERVER_IP\"]"
    IRIS_AUTH__ARGON2_MEMORY_KIB=1024 IRIS_AUTH__ARGON2_PASSES=1 IRIS_HTTP__HSTS=false
    IRIS_HTTP__DRAIN_TIMEOUT_SECS=1)
  ip netns exec "$SRV" env "${env[@]}" "$IRIS" serve --data-dir "$data" > "$WORK/server-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "is running" "$WORK/server-$1.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "is running" "$WORK/server-$1.log" || { log "iris serve did not start"; cat "$WORK/server-$1.log" >&2; return 1; }
  for u in alice bob; do
    run env "${env[@]}" "$IRIS" user add "$u@$NAME" --password "$u-password" --name "${u^} Lab" --data-dir "$data" >/dev/null
  done
}

# Builds scenario $1: sets A, B (client namespaces), PROXY_A/B, MOVE_A/B.
build() {
  NET="${P}-inet"; SRV="${P}-srv"; RA="${P}-ra"; RB="${P}-rb"; A="${P}-a"; B="${P}-b"
  PROXY_A=""; PROXY_B=""; MOVE_A=""; MOVE_B=""
  netns "$NET"
  ip -n "$NET" link add br0 type bridge; ip -n "$NET" link set br0 up
  server "$1"
  site "$RA" 11.0.0.11 1
  client "$A" "$RA" 1 2
  if [ "$1" = S1 ]; then
    client "$B" "$RA" 1 3
  else
    site "$RB" 11.0.0.12 2
    client "$B" "$RB" 2 2
  fi
  local lan='iifname "lan0" oifname "wan0"'
  local routers=("$RA"); [ "$1" = S1 ] || routers+=("$RB")
  for r in "${routers[@]}"; do
    case "$1" in
      S1|S2|S7) firewall "$r" "" accept "" ;;
      S3) firewall "$r" "" drop "$lan ip daddr $SERVER_IP tcp dport 443 accept
    $lan ip daddr $SERVER_IP udp dport 3478 accept" ;;
      S4) firewall "$r" "" accept "meta l4proto udp drop" ;;
      S5) firewall "$r" "" drop "" ;;
      S6) firewall "$r" "fully-random" accept "" ;;
    esac
  done
  if [ "$1" = S5 ]; then
    proxy "$RA" 10.1.0.1; proxy "$RB" 10.2.0.1
    PROXY_A=http://10.1.0.1:3128; PROXY_B=http://10.2.0.1:3128
    # No external DNS either: the clients' resolver knows no iris.lab and answers at once.
    for ns in "$A" "$B"; do
      mkdir -p "/etc/netns/$ns"; printf '127.0.0.1 localhost\n' > "/etc/netns/$ns/hosts"; : > "/etc/netns/$ns/resolv.conf"
    done
  else
    dns "$RA" 10.1.0.1; hosts "$A" 10.1.0.1
    if [ "$1" = S1 ]; then hosts "$B" 10.1.0.1; else dns "$RB" 10.2.0.1; hosts "$B" 10.2.0.1; fi
  fi
  if [ "$1" = S7 ]; then
    MOVE_A="ip netns exec $A sh -c 'ip addr flush dev eth0 && ip addr add 10.1.0.7/24 dev eth0 && ip route replace default via 10.1.0.1'"
    MOVE_B="ip netns exec $B sh -c 'ip addr flush dev eth0 && ip addr add 10.2.0.7/24 dev eth0 && ip route replace default via 10.2.0.1'"
  fi
}

# What netcheck must say in each scenario: exit code and the start of the summary.
expected() {
  case "$1" in
    S1|S2|S3|S6|S7) echo "0|All good — calls use UDP 3478" ;;
    S4) echo "1|UDP blocked — calls will use TURN over TLS 443; expect higher latency under loss" ;;
    S5) echo "1|No direct outbound traffic — calls will use TURN over TLS through the proxy 443" ;;
  esac
}

ROWS=()
FAILED=0
# LAB_RETRIES (1): a failed scenario runs once more at the end, and passes only if that run
# passes; the table marks it "pass*" and the failure stays in the log above it. Known
# intermittent (2026-12-01, about 1 in 4 S7 runs, with or without the relay's connected send
# sockets): after the caller's address change Chromium moves to its new srflx candidate
# without an ICE restart and the callee → caller direction stays silent for 30 s.
RETRIES=${LAB_RETRIES:-1}
declare -A TRIES=()
RETRIED=()
QUEUE=("${SCENARIOS[@]}")
qi=0
while [ "$qi" -lt "${#QUEUE[@]}" ]; do
  s=${QUEUE[$qi]}; qi=$((qi + 1))
  TRIES[$s]=$(( ${TRIES[$s]:-0} + 1 ))
  t0=$(date +%s)
  log "== $s: building"
  build "$s"
  # netcheck from client A.
  exp=$(expected "$s"); exp_code=${exp%%|*}; exp_text=${exp#*|}
  args=(netcheck "https://$NAME" --user "alice@$NAME" --insecure --quick --json --timeout 2)
  [ -z "$PROXY_A" ] || args+=(--proxy "$PROXY_A")
  set +e
  IRIS_PASSWORD=alice-password timeout 120 ip netns exec "$A" "$IRIS" "${args[@]}" > "$WORK/netcheck-$s.json" 2> "$WORK/netcheck-$s.err"
  code=$?
  set -e
  summary=$(node -e 'try{const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r.verdict.summary)}catch(e){console.log("no report")}' "$WORK/netcheck-$s.json")
  nc_ok=no
  if [ "$code" = "$exp_code" ] && [[ "$summary" == "$exp_text"* ]]; then nc_ok=yes; fi
  [ "$nc_ok" = yes ] || { log "$s: netcheck exit $code, summary: $summary (expected $exp_code: $exp_text)"; cat "$WORK/netcheck-$s.err" >&2; }
  # The call.
  set +e
  call=$(cd "$ROOT/tests/browser" && IRIS_BASE_URL="https://$NAME" LAB_NS_A="$A" LAB_NS_B="$B" \
    LAB_LOGIN_A="alice@$NAME" LAB_PASSWORD_A=alice-password LAB_NAME_A="Alice Lab" \
    LAB_LOGIN_B="bob@$NAME" LAB_PASSWORD_B=bob-password LAB_NAME_B="Bob Lab" \
    LAB_PROXY_A="$PROXY_A" LAB_PROXY_B="$PROXY_B" LAB_MOVE_A="$MOVE_A" LAB_MOVE_B="$MOVE_B" \
    timeout 170 node lab-call.mjs 2> "$WORK/call-$s.err" | tail -n1)
  set -e
  field() { node -e 'let r={};try{r=JSON.parse(process.argv[1])}catch(e){};const v=process.argv[2].split(".").reduce((o,k)=>o==null?o:o[k],r);console.log(v==null?"-":v)' "$call" "$1"; }
  call_ok=$(field ok); login=$(field login); chat=$(field chat_ms); ttfm=$(field ttfm_ms); gap=$(field gap_ms); gaps="$(field gaps_ms.caller)/$(field gaps_ms.callee)"; pair=$(field a.pair)
  [ "$call_ok" = true ] || { log "$s: call failed in step $(field step): $(field error)"; tail -n "${LAB_TAIL:-20}" "$WORK/call-$s.err" >&2; }
  log "$s: call $call"
  # R-11: after an address change the call resumes within a few seconds (10 s at most here).
  if [ "$s" = S7 ] && { [ "$gap" = "-" ] || [ "$gap" -gt 10000 ]; }; then
    [ "$call_ok" = true ] && { log "$s: media resumed too late (gap ${gap} ms > 10 s)"; tail -n "${LAB_TAIL:-20}" "$WORK/call-$s.err" >&2; }
    call_ok=false
  fi
  [ "$s" = S7 ] && gap=$gaps || gap=-
  [ "$login" = true ] && login=yes || login=no
  [ "$chat" = - ] && chat=no || chat="yes ${chat}ms"
  status=pass
  { [ "$nc_ok" = yes ] && [ "$call_ok" = true ]; } || status=FAIL
  if [ "$status" = FAIL ] && [ "${TRIES[$s]}" -le "$RETRIES" ]; then
    log "$s: FAILED on try ${TRIES[$s]}; it runs once more at the end (LAB_RETRIES=$RETRIES)"
    RETRIED+=("$s")
    QUEUE+=("$s")
    teardown
    # The second run starts from a fresh server (accounts, certificate).
    rm -rf "$WORK/data-$s"
    continue
  fi
  [ "$status" = pass ] || FAILED=1
  if [ "$status" = pass ] && [ "${TRIES[$s]}" -gt 1 ]; then status="pass*"; fi
  ROWS+=("$s|$code ${summary:0:62}|$nc_ok|$login|$chat|$ttfm|$gap|$pair|$status|$(( $(date +%s) - t0 ))")
  teardown
done

printf '\nIris network lab (issue 6): the Iris web client in two Chromium instances\n'
fmt='%-4s %-66s %-3s %-5s %-11s %-8s %-10s %-27s %-6s %s\n'
printf "$fmt" scen "netcheck (exit, verdict)" ok login chat "TTFM ms" "gap ms" "A's pair (local ⇄ remote)" result s
for row in "${ROWS[@]}"; do
  IFS='|' read -r s nc ncok login chat ttfm gap pair st secs <<< "$row"
  printf "$fmt" "$s" "$nc" "$ncok" "$login" "$chat" "$ttfm" "$gap" "$pair" "$st" "$secs"
done
if [ ${#RETRIED[@]} -gt 0 ]; then
  printf '(failed once and ran again: %s; pass* = passed on that second run)\n' "${RETRIED[*]}"
fi
exit $FAILED
