#!/usr/bin/env bash
# Compares `berth serve` with CNCF Distribution on the `berth bench` workload.
#
#   scripts/bench-compare.sh [-n ROUNDS] [-t berth,distribution] [-o DIR] [-- BENCH FLAGS...]
#
# Builds berth, then for each round starts every target fresh on a loopback
# port with empty filesystem storage in a temporary directory, runs
# `berth bench --pid <server> --ceiling-dir <its storage> --output json`
# against it, and stops it. Targets alternate, and their order flips every
# round (A B, B A, A B…) so drift in this machine's load hits both alike.
# Finally it prints the median of every figure per target, side by side
# (`berth bench compare`). Flags after -- go to every `berth bench` (e.g.
# -- --blob-size 64MiB for a quick look). Reports are kept in -o DIR when
# given, else in a temporary directory that is removed.
#
# Distribution is the `registry` binary from scripts/peers.sh (.peers/bin, or
# PATH), run with filesystem storage and OTEL_TRACES_EXPORTER=none, its logging
# otherwise at its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
targets=berth,distribution
keep=""
while getopts "n:t:o:h" opt; do
  case $opt in
    n) rounds=$OPTARG ;;
    t) targets=$OPTARG ;;
    o) keep=$OPTARG ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
bench_flags=("$@")
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-compare: -n $rounds: want a positive number" >&2; exit 2; }
IFS=, read -r -a targets <<<"$targets"
for t in "${targets[@]}"; do
  case $t in berth|distribution) ;; *) echo "bench-compare: unknown target $t (want berth, distribution)" >&2; exit 2 ;; esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-compare.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
results=${keep:-$work/results}
mkdir -p "$results"

echo "bench-compare: building berth" >&2
go build -o "$work/berth" ./cmd/berth
registry=""
if [[ " ${targets[*]} " == *" distribution "* ]]; then
  if [ -x .peers/bin/registry ]; then registry=.peers/bin/registry
  else registry=$(command -v registry) || { echo "bench-compare: Distribution's registry binary not found (run scripts/peers.sh)" >&2; exit 1; }
  fi
fi

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# start TARGET DIR ADDR: starts the server in the background, sets server_pid.
start() {
  local target=$1 dir=$2 addr=$3
  mkdir -p "$dir/data"
  case $target in
    berth)
      "$work/berth" serve --addr "$addr" --root "$dir/data" >"$dir/server.log" 2>&1 &
      ;;
    distribution)
      cat >"$dir/config.yml" <<CFG
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: $addr
CFG
      OTEL_TRACES_EXPORTER=none "$registry" serve "$dir/config.yml" >"$dir/server.log" 2>&1 &
      ;;
  esac
  server_pid=$!
  for _ in $(seq 200); do
    if curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null; then return 0; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "bench-compare: $target did not answer on $addr; its log:" >&2
  tail -n 20 "$dir/server.log" >&2
  return 1
}

stop() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

declare -A files
for ((r = 1; r <= rounds; r++)); do
  order=("${targets[@]}")
  if ((r % 2 == 0)); then # flip the order every other round
    order=()
    for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[i]}"); done
  fi
  for t in "${order[@]}"; do
    dir="$work/$t-$r"
    addr="127.0.0.1:$(free_port)"
    echo "bench-compare: round $r/$rounds: $t on $addr" >&2
    start "$t" "$dir" "$addr"
    out="$results/$t-$r.json"
    if ! "$work/berth" bench "http://$addr" --pid "$server_pid" --ceiling-dir "$dir" --output json \
      ${bench_flags[@]+"${bench_flags[@]}"} >"$out"; then
      echo "bench-compare: berth bench against $t failed; server log:" >&2
      tail -n 20 "$dir/server.log" >&2
      exit 1
    fi
    stop
    rm -rf "$dir" # free the disk before the next server writes its copy
    files[$t]="${files[$t]:+${files[$t]},}$out"
  done
done

args=()
for t in "${targets[@]}"; do args+=("$t=${files[$t]}"); done
echo
"$work/berth" bench compare "${args[@]}"
[ -n "$keep" ] && echo "bench-compare: reports in $keep" >&2
exit 0
