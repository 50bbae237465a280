"""Imported first by kirag/__init__.py. In the `kirag` console command (only there: never when a
program imports kirag), Ctrl-C while Python is still importing kirag ends as
`kirag CMD: interrupted`, exit 130, not as a traceback from the middle of an import; nothing is
written yet. The CLI's main() hands SIGINT back to Python (kirag.core.interrupts.main_takes_over).
Only modules Python has loaded before any user code are used, so the window before this runs is
Python's own start-up."""

import os
import signal
import sys


def interrupted_while_starting(number, frame) -> None:
    command, words = "", iter(sys.argv[1:])
    for word in words:
        if word == "--log-level":
            next(words, None)  # its value
        elif not word.startswith("-"):
            command = word
            break
    print(f"kirag {command}: interrupted" if command else "kirag: interrupted", file=sys.stderr)
    raise SystemExit(130)


_script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
if (
    os.path.basename(_script) == "kirag"
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, interrupted_while_starting)
