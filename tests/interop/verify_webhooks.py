"""Verifies webhook deliveries with the official Standard Webhooks library.

Used by crates/mcpbus/tests/webhooks.rs: reads a JSON list of {"secret", "headers", "body"}
from standard input (body: the raw request body as text) and writes a JSON list with, for each
delivery, "ok" or why `standardwebhooks.Webhook(secret).verify(body, headers)` refused it.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> None:
    results = []
    for item in json.load(sys.stdin):
        try:
            Webhook(item["secret"]).verify(item["body"], item["headers"])
            results.append("ok")
        except Exception as e:  # every refusal is reported, never raised
            results.append(f"{type(e).__name__}: {e}")
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
