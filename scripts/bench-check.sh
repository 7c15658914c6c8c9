#!/usr/bin/env bash
# Benchmark `iceprobe check` against coturn in network namespaces with 50 ms of added RTT.
#
#     scripts/bench-check.sh
#
# Needs root (namespaces, iptables, apt-get): as an ordinary user it re-runs itself through
# `sudo -E env "PATH=$PATH"` (scripts/lib/as-root.sh), so cargo is still found; with no sudo
# either it stops.
#
#   cli ns 198.18.0.10 ──veth── srv ns 198.18.0.1 (+ 1,000 more addresses for the scale run)
#
# The delay is 25 ms each way, added on receipt in each namespace by iptables
# `-j NFQUEUE --queue-bypass` and examples/nfq_delay.rs (this kernel has no netem, and no
# nft_queue: the xtables NFQUEUE target through iptables-nft is what works).
# Not part of `cargo test` or CI.
#
# Environment: BENCH_RUNS (default 5) runs per transport; BENCH_SCALE (default 1000) URLs in
# the scale run, 0 to skip; BENCH_DELAY_MS (default 25) one-way delay; BENCH_CONCURRENCY
# (default "64 256 1024") the --concurrency values of the scale run, BENCH_SCALE_RUNS (default
# 3) timed runs of each, after one untimed warm-up run; BENCH_PERF_DIR, when set,
# records each scale run system-wide with `perf record -a -g` into that directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/as-root.sh
source "$HERE/lib/as-root.sh"
why="it creates network namespaces, adds iptables NFQUEUE rules in them, and installs missing"
why+=" iptables and time with apt-get"
as_root "$HERE/bench-check.sh" "$why" "$@" ||
    { echo "bench-check.sh: run as root (not root, and sudo did not make it root or is not installed)" >&2; exit 2; }

RUNS=${BENCH_RUNS:-5}
SCALE=${BENCH_SCALE:-1000}
CONCURRENCY=${BENCH_CONCURRENCY:-64 256 1024}
SCALE_RUNS=${BENCH_SCALE_RUNS:-3}
OWD=${BENCH_DELAY_MS:-25}
RTT=$((OWD * 2))
QUEUE=7
ROOT=$(cd "$HERE/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

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
COTURN_PIDS=()
DELAY_PIDS=()

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

# Scale addresses: 198.18.4.0 onwards, one per server URL, on the server's loopback and routed
# to from the client through 198.18.0.1, as servers behind a router are. On-link addresses
# would make the client resolve 1,000 neighbours by ARP, past the default neighbour-table
# thresholds (gc_thresh2 512, gc_thresh3 1024): a cost of the testbed, not of the check.
scale_ip() { echo "198.18.$((4 + $1 / 250)).$(($1 % 250 + 1))"; }
if [ "$SCALE" -gt 0 ]; then
    [ "$SCALE" -le 1000 ] || { echo "bench-check.sh: BENCH_SCALE at most 1000" >&2; exit 2; }
    for ((i = 0; i < SCALE; i++)); do echo "addr add $(scale_ip "$i")/32 dev lo"; done >"$WORK/addrs"
    ip -n "$SRV" -batch "$WORK/addrs"
    ip -n "$CLI" route add 198.18.4.0/22 via 198.18.0.1
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
    COTURN_PIDS+=($!)
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
    --tls-listening-port=5349 --cert="$WORK/leaf.pem" --pkey="$WORK/leaf.key"
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
    DELAY_PIDS+=($!)
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
#   TCP +1 connect; TLS +1 connect +2 handshake (coturn 4.6.1 tops out at TLS 1.2);
#   DTLS 1.2 +3 handshake (the HelloVerifyRequest cookie exchange, RFC 6347 §4.2.1, then 2).
declare -A URL=([stun]="stun:198.18.0.1" [udp]="turn:198.18.0.1?transport=udp"
    [tcp]="turn:198.18.0.1?transport=tcp" [tls]="turns:198.18.0.1:5349"
    [dtls]="turns:198.18.0.1:5349?transport=udp")
declare -A MIN_RTT=([stun]=1 [udp]=6 [tcp]=7 [tls]=9 [dtls]=9)

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo
echo "== one row at a time, $RUNS runs each, median (RTT ${RTT} ms)"
printf '%-5s %8s %10s %10s %8s   %s\n' row min_rtts min_ms check_ms ratio "process wall ms (median)"
for row in stun udp tcp tls dtls; do
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
for row in udp tcp tls dtls; do
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
    # CPU seconds (user + system) the given processes have used so far.
    cpu_s() {
        local ticks=0 pid f
        for pid in "$@"; do
            read -r -a f <"/proc/$pid/stat" || continue
            ticks=$((ticks + f[13] + f[14]))
        done
        echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc
    }
    # One timed check of all URLs at concurrency $1; $2 labels the line. Appends the check's
    # duration to $WORK/scale.$1.ms unless $2 is "warm-up".
    scale_run() {
        local conc=$1 label=$2
        sleep 2
        coturn0=$(cpu_s "${COTURN_PIDS[@]}")
        delay0=$(cpu_s "${DELAY_PIDS[@]}")
        # Under the usual soft limit of 1,024 descriptors; the peak count is sampled from /proc
        # every 10 ms while the check runs.
        limit=1024
        rm -f "$WORK/timer.pid"
        # shellcheck disable=SC2016 # the inner bash expands these, not this one
        in_cli bash -c 'echo $$ >"$1.pid"; ulimit -n "$2"; shift 2; exec /usr/bin/time -f "%M %e %U %S" -o "$0" "$@"' \
            "$WORK/time.$conc" "$WORK/timer" "$limit" \
            "$ICEPROBE" check "${urls[@]}" "${ARGS[@]}" --concurrency "$conc" --timeout 60s \
            >"$WORK/scale.$conc.json" &
        runner=$!
        perf_pid=
        if [ -n "${BENCH_PERF_DIR:-}" ]; then
            mkdir -p "$BENCH_PERF_DIR"
            perf record -a -g -q -o "$BENCH_PERF_DIR/scale-$conc-$(date +%s%N).data" &
            perf_pid=$!
        fi
        peak_fd=0
        # The sampler forks nothing (bash builtins only: a glob, `read`, and a 10 ms `read -t`
        # on a FIFO as the sleep), so it takes as little CPU as possible from the run it watches.
        [ -p "$WORK/tick" ] || mkfifo "$WORK/tick"
        exec 9<>"$WORK/tick"
        timer=
        while kill -0 "$runner" 2>/dev/null; do
            # iceprobe is the child of /usr/bin/time, which took over the inner bash's pid.
            [ -n "$timer" ] || { read -r timer <"$WORK/timer.pid"; } 2>/dev/null || true
            kids=
            [ -z "$timer" ] || { read -r kids <"/proc/$timer/task/$timer/children"; } 2>/dev/null || true
            for p in $kids; do
                fds=("/proc/$p/fd/"*)
                # It may exit between the two reads: an unmatched glob counts as nothing.
                [ -e "${fds[0]}" ] || continue
                [ "${#fds[@]}" -le "$peak_fd" ] || peak_fd=${#fds[@]}
            done
            read -r -t 0.01 -u 9 _ || true
        done
        exec 9>&-
        [ -z "$perf_pid" ] || { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
        wait "$runner" || true
        coturn_cpu=$(echo "$(cpu_s "${COTURN_PIDS[@]}") - $coturn0" | bc)
        delay_cpu=$(echo "$(cpu_s "${DELAY_PIDS[@]}") - $delay0" | bc)
        read -r rss_kb wall_s user_s sys_s <"$WORK/time.$conc"
        passed=$(jq '[.rows[] | select(.verdict != "fail")] | length' "$WORK/scale.$conc.json")
        dur=$(jq '.duration_ms' "$WORK/scale.$conc.json")
        [ "$label" = warm-up ] || echo "$dur" >>"$WORK/scale.$conc.ms"
        printf '%-8s concurrency %4d: %d/%d rows passed, check %.0f ms (%.2fx one server), process %.2f s (cpu %.2f s user + %.2f s sys), peak RSS %.1f MB, peak open fds %d (limit %d); meanwhile coturn cpu %.2f s, delay emulators cpu %.2f s\n' \
            "$label" "$conc" "$passed" "$SCALE" "$dur" "$(echo "$dur / $one" | bc -l)" "$wall_s" \
            "$user_s" "$sys_s" "$(echo "$rss_kb / 1024" | bc -l)" "$peak_fd" "$limit" \
            "$coturn_cpu" "$delay_cpu"
    }
    # Where the time of the last run at concurrency $1 went: each stage's median, 90th
    # percentile and slowest time over the rows (ms).
    stage_times() {
        for stage in binding challenge allocate permission channel send_echo channel_echo release; do
            jq -r --arg s "$stage" '[.rows[] | .[$s].ms // empty] | sort |
                "\($s) \(.[length / 2 | floor] | floor) \(.[length * 9 / 10 | floor] | floor) \(.[-1] | floor)"' \
                "$WORK/scale.$1.json"
        done | (echo "stage median p90 max"; cat) | column -t | sed 's/^/         /'
    }
    one=$(median <"$WORK/udp.ms")
    # The ten coturn processes were just started: their first 2,000 allocations cost them about
    # half as much CPU again as later ones (memory pools, relay sockets). A real fleet is warm,
    # so one untimed run comes first; its line is printed, and not counted.
    scale_run 1024 warm-up
    for conc in $CONCURRENCY; do
        for ((r = 1; r <= SCALE_RUNS; r++)); do
            scale_run "$conc" "run $r"
        done
        stage_times "$conc"
        got=$(median <"$WORK/scale.$conc.ms")
        printf 'concurrency %d: median of %d runs %.0f ms = %.2fx one server (%.1f ms)\n\n' \
            "$conc" "$SCALE_RUNS" "$got" "$(echo "$got / $one" | bc -l)" "$one"
    done
fi
echo
echo "machine: $(nproc) cores, $(uname -r), $(turnserver --version 2>/dev/null | head -1 || true)"
