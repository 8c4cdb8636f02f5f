"""Verifies webhook deliveries with the official Standard Webhooks library.

Used by crates/mcpbus/tests/webhooks.rs and crates/mcpbus-cli/tests/webhook_replicas.rs: reads
a JSON list of {"secret", "headers", "body"} from the file named as its argument, or from
standard input (body: the raw request body as text) and writes a JSON list with, for each
delivery, "ok" or why `standardwebhooks.Webhook(secret).verify(body, headers)` refused it.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> None:
    results = []
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            items = json.load(f)
    else:
        items = json.load(sys.stdin)
    for item in items:
        try:
            Webhook(item["secret"]).verify(item["body"], item["headers"])
            results.append("ok")
        except Exception as e:  # every refusal is reported, never raised
            results.append(f"{type(e).__name__}: {e}")
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
