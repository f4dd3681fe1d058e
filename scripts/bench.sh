#!/bin/sh
# Runs the benchmarks of docs/benchmarks.md against a scratch standalone
# ZooKeeper on a free loopback port, writing JSON results to bench-results/.
set -eu
cd "$(dirname "$0")/.."
BIN=bin/jobengine
OUT=bench-results
mkdir -p "$OUT"
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$DIR/data"
cat > "$DIR/zoo.cfg" <<CFG
tickTime=250
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,mntr,ruok,stat,conf
maxClientCnxns=0
maxSessionTimeout=40000
CFG
java -Xmx1g -XX:+UseSerialGC -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
	org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/zoo.cfg" > "$DIR/zk.log" 2>&1 &
ZK=$!
trap 'kill $ZK 2>/dev/null; wait $ZK 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM
for i in $(seq 1 100); do
	if timeout 2 $BIN --zk-hosts 127.0.0.1:$PORT --zk-connect-timeout 1s queue stats >/dev/null 2>&1; then break; fi
	sleep 0.1
done
Z="--zk-hosts 127.0.0.1:$PORT"
run() { name=$1; shift; echo "== $name: jobengine $*" >&2; $BIN $Z "$@" | tee "$OUT/$name.json"; }
for i in 1 2 3; do run "queue-1k-$i" bench queue --jobs 20000 --depth 1000 --workers 32 --connections 4; done
run queue-100k bench queue --jobs 20000 --depth 100000 --workers 32 --connections 4
run queue-1k-batch8 bench queue --jobs 20000 --depth 1000 --workers 32 --connections 4 --batch 8
run queue-100k-batch8 bench queue --jobs 20000 --depth 100000 --workers 32 --connections 4 --batch 8
# A million queued entries: the listing of each consumer is 24 MB; a long
# session timeout rides out the fsync stalls of filling it on a slow disk.
run queue-1m-batch8 --zk-session-timeout 40s bench queue --jobs 20000 --depth 1000000 --workers 32 --connections 4 --batch 8 --skip-latency
# The same workload through Python kazoo's LockingQueue (the reference
# engine's queue), on the same ZooKeeper.
echo "== kazoo LockingQueue" >&2
/usr/bin/python3 scripts/bench_kazoo.py 127.0.0.1:$PORT --jobs 5000 --depth 1000 --procs 4 --threads 8 | tee "$OUT/kazoo-1k.json"
# job add in batches with the outbox on (an Elasticsearch address turns it
# on; nothing is sent there): the seconds of 20,000 jobs.
echo "== job add --count 20000 (outbox on)" >&2
START=$(date +%s.%N)
$BIN $Z --zk-root /bench-add --es-hosts http://127.0.0.1:9 job add --count 20000 --max-backlog 1000000 \
	fail --payload '{"code":0}' > /dev/null
echo "$START $(date +%s.%N)" | awk '{printf "{\"jobs\": 20000, \"seconds\": %.2f}\n", $2 - $1}' | tee "$OUT/job-add-20k.json"
run executors bench executors --jobs 10000 --executors 1,2,4 --threads 8 --probes 200 --zk-pid $ZK
run executors-echo bench executors --jobs 10000 --executors 2 --threads 8 --probes 100 --workload echo --zk-pid $ZK
run drain-100k bench executors --jobs 100000 --executors 4 --threads 8 --probes 50 --zk-pid $ZK
go test -run '^$' -bench BenchmarkJob -benchtime 2s -count 3 -benchmem ./engine/pluginhost | tee "$OUT/plugin.txt"
go test -run '^$' -bench . -benchmem -benchtime 5x -count 3 ./engine/inventory ./engine/template | tee "$OUT/objects.txt"
go test -run '^$' -bench BenchmarkPass -benchtime 3x ./engine/scheduler | tee "$OUT/scheduler.txt"
# 100,000 jobs with indexing on (in-process Elasticsearch): the outbox depth.
go test -run '^$' -bench OutboxDepth -benchtime 1x -timeout 40m ./engine/bench | tee "$OUT/outbox.txt"
echo >&2
/usr/bin/python3 scripts/bench_table.py "$OUT"
