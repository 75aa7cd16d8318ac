"""Prints the bytes a build sent for its context: the largest "transferring"
figure of the plain-progress log named as the only argument (the Dockerfile's
and .dockerignore's transfers are a few bytes), as the daemon reports it, in
bytes; 0 when the log has none."""
import re
import sys

UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
FIGURE = re.compile(r"transferring(?: context:)? ([0-9.]+)([kMG]?B)")

with open(sys.argv[1], errors="replace") as log:
    sizes = [float(n) * UNITS[u] for n, u in FIGURE.findall(log.read())]
print(int(max(sizes, default=0)))
