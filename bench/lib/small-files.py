"""Writes the benchmarks' small files: 10,000 files of 4 KiB each (rotations of
one random block, so no two are alike) in 100 directories under the directory
given as the only argument, which may already exist."""
import os
import sys

root = sys.argv[1]
block = os.urandom(4096)
for i in range(10000):
    d = os.path.join(root, "d%02d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(block[i % 4096:] + block[:i % 4096])
