#!/usr/bin/env bash
# Benchmark `iceprobe check` against coturn in network namespaces with 50 ms of added RTT.
# Run as root: sudo -E env "PATH=$PATH" scripts/bench-check.sh
#
#   cli ns 198.18.0.10 ──veth── srv ns 198.18.0.1 (+ 1,000 more addresses for the scale run)
#
# The delay is 25 ms each way, added on receipt in each namespace by iptables
# `-j NFQUEUE --queue-bypass` and examples/nfq_delay.rs (this kernel has no netem, and no
# nft_queue: the xtables NFQUEUE target through iptables-nft is what works).
# Not part of `cargo test` or CI.
#
# Environment: BENCH_RUNS (default 5) runs per transport; BENCH_SCALE (default 1000) URLs in
# the scale run, 0 to skip; BENCH_DELAY_MS (default 25) one-way delay.
set -euo pipefail

RUNS=${BENCH_RUNS:-5}
SCALE=${BENCH_SCALE:-1000}
OWD=${BENCH_DELAY_MS:-25}
RTT=$((OWD * 2))
QUEUE=7
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

[ "$(id -u)" = 0 ] || { echo "bench-check.sh: run as root" >&2; exit 2; }
command -v iptables >/dev/null || apt-get install -y iptables >/dev/null
for tool in turnserver iptables ip openssl jq bc column; do
    command -v "$tool" >/dev/null || { echo "bench-check.sh: missing $tool" >&2; exit 2; }
done
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

echo "== building (release)"
(cd "$ROOT" && cargo build --release --quiet --bin iceprobe --example nfq_delay)
ICEPROBE=$CARGO_TARGET_DIR/release/iceprobe
NFQ_DELAY=$CARGO_TARGET_DIR/release/examples/nfq_delay

CLI=ipb-$$-cli
SRV=ipb-$$-srv
WORK=$(mktemp -d /tmp/iceprobe-bench.XXXXXX)
PIDS=()

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.5
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "$CLI" "$SRV"; do
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

in_cli() { ip netns exec "$CLI" "$@"; }

echo "== namespaces $CLI, $SRV"
for ns in "$CLI" "$SRV"; do
    ip netns add "$ns"
    mkdir -p "/etc/netns/$ns"
    echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
# Both ends are created inside the test namespaces; nothing touches the root namespace.
ip -n "$CLI" link add c0 type veth peer name s0 netns "$SRV"
ip -n "$CLI" addr add 198.18.0.10/15 dev c0
ip -n "$SRV" addr add 198.18.0.1/15 dev s0
ip -n "$CLI" link set c0 up
ip -n "$SRV" link set s0 up

# Scale addresses: 198.18.4.0 onwards, one per server URL.
scale_ip() { echo "198.18.$((4 + $1 / 250)).$(($1 % 250 + 1))"; }
if [ "$SCALE" -gt 0 ]; then
    for ((i = 0; i < SCALE; i++)); do echo "addr add $(scale_ip "$i")/15 dev s0"; done >"$WORK/addrs"
    ip -n "$SRV" -batch "$WORK/addrs"
fi

echo "== certificates"
(
    cd "$WORK"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iceprobe bench CA" \
        -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=198.18.0.1" -keyout leaf.key -out leaf.csr 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:198.18.0.1\nextendedKeyUsage=serverAuth\n' >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile leaf.ext -out leaf.pem 2>/dev/null
)

COMMON=(-n --no-cli --log-file=stdout --simple-log --lt-cred-mech --user=bench:bench-pw
    --realm=bench.test --fingerprint --allowed-peer-ip=198.18.0.0-198.19.255.255
    --no-rfc5780)

start_coturn() { # name, args...
    local name=$1
    shift
    mkdir -p "$WORK/$name"
    # `ip netns exec` execs turnserver, so $! is turnserver's PID (a backgrounded shell
    # function would give a subshell's PID instead).
    ip netns exec "$SRV" turnserver "${COMMON[@]}" --db="$WORK/$name/turndb" \
        --pidfile="$WORK/$name/turnserver.pid" "$@" >"$WORK/$name/log" 2>&1 </dev/null &
    PIDS+=($!)
}

wait_stun() { # ip
    for _ in $(seq 100); do
        if in_cli "$ICEPROBE" check "stun:$1" --timeout 1s --format json >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "coturn on $1 never answered" >&2
    return 1
}

echo "== coturn (UDP, TCP, TLS on 198.18.0.1)"
start_coturn main --listening-ip=198.18.0.1 --relay-ip=198.18.0.1 --listening-port=3478 \
    --tls-listening-port=5349 --cert="$WORK/leaf.pem" --pkey="$WORK/leaf.key" --no-dtls
wait_stun 198.18.0.1

if [ "$SCALE" -gt 0 ]; then
    PER=100 # listening addresses per coturn process
    echo "== coturn for the scale run: $SCALE addresses, $PER per process"
    for ((p = 0; p * PER < SCALE; p++)); do
        args=()
        for ((i = p * PER; i < (p + 1) * PER && i < SCALE; i++)); do
            args+=("--listening-ip=$(scale_ip "$i")")
        done
        start_coturn "scale$p" "${args[@]}" --relay-ip="$(scale_ip $((p * PER)))" \
            --listening-port=3478 --no-tls --no-dtls --no-tcp
    done
    for ((p = 0; p * PER < SCALE; p++)); do
        last=$(((p + 1) * PER - 1))
        [ "$last" -lt "$SCALE" ] || last=$((SCALE - 1))
        wait_stun "$(scale_ip "$last")"
    done
fi

echo "== delay: ${OWD} ms each way (NFQUEUE $QUEUE on INPUT in both namespaces)"
# Each side delays what it receives. Delaying on the sender's OUTPUT hook instead would hold
# the skb against the sending socket, and TCP small queues would then hold back the next
# segment of the same socket until the first left the queue (+1 one-way delay on TCP bursts).
for ns in "$CLI" "$SRV"; do
    ip netns exec "$ns" "$NFQ_DELAY" --queue "$QUEUE" --delay-ms "$OWD" --time-limit 1800 \
        >"$WORK/nfq-$ns.log" 2>&1 </dev/null &
    PIDS+=($!)
done
in_cli iptables -A INPUT -i c0 -j NFQUEUE --queue-num "$QUEUE" --queue-bypass
ip netns exec "$SRV" iptables -A INPUT -i s0 -j NFQUEUE --queue-num "$QUEUE" --queue-bypass
sleep 0.3
# Prove the delay is there: a STUN Binding is one round trip.
binding_ms=$(in_cli "$ICEPROBE" check stun:198.18.0.1 --format json |
    jq '.rows[0].binding.ms')
echo "   STUN Binding RTT with the delay: ${binding_ms} ms (expect ~${RTT})"

ARGS=(-u bench --credential bench-pw --ca "$WORK/ca.pem" --format json)

# Protocol minimum in round trips (see src/proto/turn/tests/critical_path.rs):
#   TURN row = allocate 2 + permission/channel 1 + echo 2 + release 1 = 6
#   TCP +1 connect; TLS +1 connect +2 handshake (coturn 4.6.1 tops out at TLS 1.2).
declare -A URL=([stun]="stun:198.18.0.1" [udp]="turn:198.18.0.1?transport=udp"
    [tcp]="turn:198.18.0.1?transport=tcp" [tls]="turns:198.18.0.1:5349")
declare -A MIN_RTT=([stun]=1 [udp]=6 [tcp]=7 [tls]=9)

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo
echo "== one row at a time, $RUNS runs each, median (RTT ${RTT} ms)"
printf '%-5s %8s %10s %10s %8s   %s\n' row min_rtts min_ms check_ms ratio "process wall ms (median)"
for row in stun udp tcp tls; do
    : >"$WORK/$row.ms"
    : >"$WORK/$row.wall"
    for ((r = 0; r < RUNS; r++)); do
        t0=$(date +%s%N)
        in_cli "$ICEPROBE" check "${URL[$row]}" "${ARGS[@]}" >"$WORK/$row.json" || {
            echo "check $row failed:" >&2
            jq . "$WORK/$row.json" >&2
            exit 1
        }
        t1=$(date +%s%N)
        jq '.duration_ms' "$WORK/$row.json" >>"$WORK/$row.ms"
        echo $(((t1 - t0) / 1000000)) >>"$WORK/$row.wall"
        sleep 0.2
    done
    cp "$WORK/$row.json" "$WORK/last-$row.json"
    min=$((MIN_RTT[$row] * RTT))
    got=$(median <"$WORK/$row.ms")
    wall=$(median <"$WORK/$row.wall")
    printf '%-5s %8d %10d %10.1f %7.3fx   %s\n' "$row" "${MIN_RTT[$row]}" "$min" "$got" \
        "$(echo "$got / $min" | bc -l)" "$wall"
done

echo
echo "== stage timings of the last run per row (ms)"
for row in udp tcp tls; do
    jq -r --arg row "$row" '.rows[0] | [$row, (.connect.ms // "-"), (.tls.ms // "-"),
        (.binding.ms // "-"), (.challenge.ms // "-"), (.allocate.ms // "-"),
        (.permission.ms // "-"), (.channel.ms // "-"), (.send_echo.ms // "-"),
        (.channel_echo.ms // "-"), (.release.ms // "-")] | map(tostring) | join(" ")' \
        "$WORK/last-$row.json"
done | (echo "row connect tls binding 401 allocate permission channel send_echo chan_echo release"; cat) |
    column -t

echo
echo "== all three rows in one check, $RUNS runs"
: >"$WORK/all.ms"
for ((r = 0; r < RUNS; r++)); do
    in_cli "$ICEPROBE" check "${URL[udp]}" "${URL[tcp]}" "${URL[tls]}" "${ARGS[@]}" >"$WORK/all.json"
    jq '.duration_ms' "$WORK/all.json" >>"$WORK/all.ms"
    sleep 0.2
done
got=$(median <"$WORK/all.ms")
printf 'udp+tcp+tls  longest chain %d ms (TLS)  measured %.1f ms  ratio %.3fx\n' \
    $((9 * RTT)) "$got" "$(echo "$got / (9 * $RTT)" | bc -l)"

if [ "$SCALE" -gt 0 ]; then
    echo
    echo "== scale: $SCALE TURN/UDP server URLs in one check"
    urls=()
    for ((i = 0; i < SCALE; i++)); do urls+=("turn:$(scale_ip "$i")?transport=udp"); done
    for conc in 64 256 1024; do
        sleep 2
        # Under the usual soft limit of 1,024 descriptors; the peak count is sampled from /proc
        # every 10 ms while the check runs.
        limit=1024
        rm -f "$WORK/timer.pid"
        in_cli bash -c 'echo $$ >"$1.pid"; ulimit -n "$2"; shift 2; exec /usr/bin/time -f "%M %e %U %S" -o "$0" "$@"' \
            "$WORK/time.$conc" "$WORK/timer" "$limit" \
            "$ICEPROBE" check "${urls[@]}" "${ARGS[@]}" --concurrency "$conc" --timeout 60s \
            >"$WORK/scale.$conc.json" &
        runner=$!
        peak_fd=0
        while kill -0 "$runner" 2>/dev/null; do
            # iceprobe is the child of /usr/bin/time, which took over the inner bash's pid.
            timer=$(cat "$WORK/timer.pid" 2>/dev/null || true)
            [ -n "$timer" ] || { sleep 0.01; continue; }
            for p in $(pgrep -x -P "$timer" iceprobe || true); do
                # It may exit between pgrep and find: not an error (pipefail is on).
                n=$( (find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
                [ "$n" -le "$peak_fd" ] || peak_fd=$n
            done
            sleep 0.01
        done
        wait "$runner" || true
        read -r rss_kb wall_s user_s sys_s <"$WORK/time.$conc"
        passed=$(jq '[.rows[] | select(.verdict != "fail")] | length' "$WORK/scale.$conc.json")
        dur=$(jq '.duration_ms' "$WORK/scale.$conc.json")
        one=$(median <"$WORK/udp.ms")
        printf 'concurrency %4d: %d/%d rows passed, check %.0f ms (%.1fx one server), process %.2f s (cpu %.2f s user + %.2f s sys), peak RSS %.1f MB, peak open fds %d (limit %d)\n' \
            "$conc" "$passed" "$SCALE" "$dur" "$(echo "$dur / $one" | bc -l)" "$wall_s" \
            "$user_s" "$sys_s" "$(echo "$rss_kb / 1024" | bc -l)" "$peak_fd" "$limit"
    done
fi
echo
echo "machine: $(nproc) cores, $(uname -r), $(turnserver --version 2>/dev/null | head -1 || true)"
