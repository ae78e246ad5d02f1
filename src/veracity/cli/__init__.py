"""The `veracity` command line: analyze, verify, sign, keys, consent, models, schema, train, serve,
worker, apikey, audit, migrate, review.

Exit codes: 0 every input analysed, 2 bad input (at least one), 1 internal error. A bad file in
a batch never stops the batch: it is reported and the rest are analysed.
"""

from __future__ import annotations

import os
import sys

from veracity.cli import analyze, consent, models, service  # noqa: F401  (each registers its commands on app)
from veracity.cli.common import app
from veracity.cli.train import train_app

__all__ = ["app", "main"]

app.add_typer(train_app, name="train")


def _silence_native_stderr() -> None:
    """MediaPipe's C++ (glog/absl/TFLite) writes INFO and W-lines straight to file descriptor 2,
    drowning the one-line errors. Python keeps the real stderr on a duplicate descriptor; native
    code gets /dev/null. VERACITY_NATIVE_LOGS=1 keeps them."""
    if os.environ.get("VERACITY_NATIVE_LOGS") == "1":
        return
    try:
        sys.stderr.flush()
        kept = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(kept, "w", buffering=1)
    except OSError:
        return


def main() -> None:
    _silence_native_stderr()
    app()


if __name__ == "__main__":
    main()
