"""The `smoke_test` gate's fresh process: load a model version, predict its example.

    python -m cairn.registry.smoke models:/NAME/N [--trusted]

Prints one JSON line ({"rows": …, "seconds": …}) and exits 0, or prints one line saying
what failed and exits 1. Run in its own process so that a model that crashes, hangs or
leaks cannot take the promotion's process with it, and the gate can time it out.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    uri, trusted = argv[0], "--trusted" in argv[1:]
    started = time.perf_counter()
    try:
        from cairn.registry.loading import load_model

        model = load_model(uri, trusted=trusted)
        example = model.input_example
        if example is None:
            print(f"{uri} has no recorded input example (log it with input_example=…)")
            return 1
        predictions = model.predict(example)
    except Exception as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "trusted" in message and not trusted:
            message += " — add `trusted: true` to the require rule to let the smoke test run it"
        print(f"{type(e).__name__}: {message}")
        return 1
    rows = len(predictions) if hasattr(predictions, "__len__") else 1
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
