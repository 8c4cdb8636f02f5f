#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (committed: they are
# small). Run it again after changing the fixtures or the seeds below; it replaces the seed
# files and leaves nothing else behind. Needs python3 (to split the JSON fixtures).
#
# Seeds: every message of crates/mcpbus-proto/tests/fixtures (one file each) for the JSON-RPC
# and MCP targets, the default CLI configuration, and small hand-made inputs in each target's
# input form (described at the top of each fuzz_targets/*.rs).
set -euo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ/.." && pwd)"
CORPUS="$FUZZ/corpus"

# seed TARGET NAME: the seed file's content comes from stdin.
seed() {
    mkdir -p "$CORPUS/$1"
    cat > "$CORPUS/$1/$2"
}

rm -rf "$CORPUS"

# JSON-RPC and MCP messages: the fixtures, one message per file.
python3 - "$ROOT/crates/mcpbus-proto/tests/fixtures" "$CORPUS" <<'PY'
import json, os, sys
fixtures, corpus = sys.argv[1], sys.argv[2]
for target in ("jsonrpc_parse", "mcp_messages"):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
for name in sorted(os.listdir(fixtures)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(fixtures, name)) as f:
        messages = json.load(f)
    for i, message in enumerate(messages):
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        for target in ("jsonrpc_parse", "mcp_messages"):
            path = os.path.join(corpus, target, f"fixture-{name[:-5]}-{i}.json")
            with open(path, "w") as out:
                out.write(text)
PY
printf '%s' '{not json' | seed jsonrpc_parse hand-not-json
printf '%s' '[{"jsonrpc":"2.0","id":1,"method":"ping"}]' | seed jsonrpc_parse hand-batch
printf '%s' '{"jsonrpc":"2.0","id":null,"method":"ping"}' | seed jsonrpc_parse hand-null-id
printf '%s' '{"jsonrpc":"2.0","id":1.5,"result":{}}' | seed jsonrpc_parse hand-float-id
printf '%s' '{"jsonrpc":"2.0","id":9,"result":{},"error":{"code":1,"message":"x"}}' | seed jsonrpc_parse hand-both
printf '%s' '{"jsonrpc":"2.0","error":{"code":-32700,"message":"bad","data":[1]}}' | seed jsonrpc_parse hand-idless-error
printf '\xff\xfe{}' | seed jsonrpc_parse hand-bad-utf8

# SSE: byte 0 = number of chunk sizes, then the sizes, then the stream.
printf '\x00id: s1-0\nretry: 1500\ndata: \n\n: keep-alive\n\nevent: message\nid: s1-1\ndata: {"jsonrpc":"2.0"}\n\n' | seed sse_decoder hand-priming
printf '\x03\x01\x02\x05data: a\r\ndata: b\r\rid\ndata:no-space\n\n' | seed sse_decoder hand-crlf
printf '\x02\x01\x01\xef\xbb\xbfdata: x\n\n\xef\xbbdata: y\n\n' | seed sse_decoder hand-bom
printf '\x00retry: 12a\ndata: a\n\nretry: 0300\nid: a\x00b\ndata: b\n\n' | seed sse_decoder hand-retry-nul
printf '\x00the-id\x1fmessage\x1fline one\r\nline two\rthree\n' | seed sse_decoder hand-free-form

# Topics: one candidate per line.
printf 'build/+/status\nagents/{agent_id}/inbox\nbuild/42/status\na/#\n#\n+\na//b\n/\na+b/c#\n{x}/{y}\na/{id}/b\n' | seed topic_parse hand-mixed
printf 'a/b/c/d/e/f/g/h\na/b/c/d/e/f/g/h/i\na/#/b\n{a}/{a}\n{}\nübung/ß\n' | seed topic_parse hand-errors

# Trie: +S PATTERN, -S PATTERN, ?TOPIC.
printf '+1 build/status\n+2 build/+\n+3 +/status\n+4 build/#\n+5 #\n?build/status\n?build\n?deploy/status\n-2 build/+\n?build/x\n+1 a//b\n?a//b\n?a/b\n' | seed topic_trie hand-basic
printf '+1 a/+/c\n+2 +\n+3 +/#\n?a/x/c\n?a//c\n?/x\n?x\n+1 a/+/c\n-1 a/+/c\n-1 a/+/c\n' | seed topic_trie hand-plus

# Event store: first line = events kept per stream, then operations.
printf '2\na s1 get\np s1 get\na s1 post-1\na s1 get\na s1 get\nl s1 $0\nr s1 get $0 10\nr s1 get $3 10\nr s1 get - 1\nl s2 $0\nl s1 @0-0-0\nl s1 @0-9-1\nr s1 get @0-0-99 3\nt s1 get\nb $0 $3\nx s1\nl s1 $0\na s1 get\nr s1 get $0 4\n' | seed event_store_ids hand-basic
printf '3\na A x\na B x\nl B $0\nr B x $0 5\nr A x $1 5\nl A nope\nl A +0-+0-+1\nl A @0-00-01\nb $0 $1\n' | seed event_store_ids hand-sessions

# HTTP: a settings line, then requests (see fuzz/src/http/script.rs).
ACCEPT='accept: application/json, text/event-stream'
JSON='content-type: application/json'
{
    echo 'mode=auto keep=4'
    printf '=== POST\nhost: localhost:8080\n%s\n%s\nmcp-session-id: $s0\nmcp-protocol-version: 2025-11-25\n\n{"jsonrpc":"2.0","id":2,"method":"ping"}\n' "$ACCEPT" "$JSON"
    printf '=== POST\nhost: localhost\n%s\n%s\nmcp-session-id: $s0\n\n{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"chatty","arguments":{},"_meta":{"progressToken":7}}}\n' "$ACCEPT" "$JSON"
    printf '=== GET\nhost: 127.0.0.1\naccept: text/event-stream\nmcp-session-id: $s0\n\n'
    printf '=== GET\nhost: 127.0.0.1\naccept: text/event-stream\nmcp-session-id: $s0\n\n'
    printf '=== GET\nhost: [::1]:3000\naccept: text/event-stream\nmcp-session-id: $s0\nlast-event-id: $e1\n\n'
    printf '=== DELETE\nhost: localhost\nmcp-session-id: $s0\n\n'
} | seed http_headers hand-session
{
    echo 'mode=sse keep=1 version=2025-06-18 origin=http://app.example'
    printf '=== POST\nhost: localhost\norigin: http://app.example\n%s\n%s\nmcp-session-id: $s0\n\n{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"close","arguments":{},"_meta":{"progressToken":"p"}}}\n' "$ACCEPT" "$JSON"
    printf '=== GET\nhost: localhost\naccept: */*\nmcp-session-id: $s0\nlast-event-id: $e0\n\n'
    printf '=== POST\nhost: evil.example\n%s\n%s\n\n{}\n' "$ACCEPT" "$JSON"
    printf '=== POST\nhost: localhost\norigin: http://evil.example\n%s\n%s\n\n{}\n' "$ACCEPT" "$JSON"
    printf '=== PUT\nhost: localhost\n\n'
} | seed http_headers hand-sse-origins
{
    echo 'mode=json sessions=3 maxbody=200'
    printf '=== POST\nhost: localhost\naccept: application/json\n%s\n\n{}\n' "$JSON"
    printf '=== POST\nhost: localhost\n%s\ncontent-type: text/plain\n\n{}\n' "$ACCEPT"
    printf '=== POST\nhost: localhost\n%s\n%s\n\n{oops\n' "$ACCEPT" "$JSON"
    printf '=== POST\nhost: localhost\n%s\n%s\ncontent-length: 99999\n\n{}\n' "$ACCEPT" "$JSON"
    printf '=== POST\nhost: localhost\n%s\n%s\n\n{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}\n' "$ACCEPT" "$JSON"
    printf '=== POST\nhost: localhost\n%s\n%s\n\n{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}\n' "$ACCEPT" "$JSON"
} | seed http_headers hand-errors
{
    echo 'stateless=1 protect=0'
    printf '=== POST\n%s\n%s\nmcp-protocol-version: 2025-03-26\n\n{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{}}}\n' "$ACCEPT" "$JSON"
    printf '=== POST\n%s\n%s\n\n{"jsonrpc":"2.0","method":"notifications/initialized"}\n' "$ACCEPT" "$JSON"
    printf '=== GET\naccept: text/event-stream\n\n'
} | seed http_headers hand-stateless
{
    echo 'mode=auto keep=2'
    printf '=== POST\nhost: localhost\n%s\n%s\nmcp-session-id: $s0\n\n{"jsonrpc":"2.0","id":4,"method":"events/subscribe","params":{"topics":["news/+"]}}\n' "$ACCEPT" "$JSON"
    printf '=== EMIT\n\none\n=== EMIT\n\ntwo\n=== EMIT\n\nthree\n'
    printf '=== GET\nhost: localhost\naccept: text/event-stream\nmcp-session-id: $s0\nlast-event-id: $e0\n\n'
} | seed http_headers hand-events

# CLI configuration: the default, and small ones.
mkdir -p "$CORPUS/cli_config"
cp "$ROOT/crates/mcpbus-cli/src/default.toml" "$CORPUS/cli_config/"

printf '[server]\nname = "x"\n\n[[events.topics]]\npattern = "a/{id}"\nkind = "signal"\nschema = { type = "object", properties = { n = { type = "integer" } } }\n' | seed cli_config hand-schema
printf '[[events.topics]]\npattern = "a/#/b"\nkind = "content"\n\n[[events.topics]]\npattern = "{x}"\nkind = "signal"\n' | seed cli_config hand-bad-pattern
printf '[http]\nlisten = "127.0.0.1:0"\nresponse_mode = "sse"\nallowed_hosts = ["example.com"]\nreplay_events_per_stream = 0\n\n[redis]\nurl = "redis://127.0.0.1:6379/0"\nprefix = "p"\n' | seed cli_config hand-http
printf '[server]\nnmae = "typo"\n' | seed cli_config hand-unknown-key

printf 'fuzz/seed.sh: %s seed files, %s bytes\n' "$(find "$CORPUS" -type f | wc -l)" \
    "$(find "$CORPUS" -type f -exec cat {} + | wc -c)"
