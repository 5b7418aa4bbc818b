#!/usr/bin/env python3
# Writes the image-folder fixture of tests/cli/test_cli_training.sh (standard library only):
# train/ holds 4 classes (cat, dog, fox, owl) of 8 16x16 RGB PNGs, test/ 4 of each, ordered
# class by class as an image folder is. Each class has its own mean color plus seeded noise.
import os, random, struct, zlib

def png(path, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    h, w = len(rows), len(rows[0]) // 3
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

rng = random.Random(22)
colors = {"cat": (200, 60, 60), "dog": (60, 200, 60), "fox": (60, 60, 200), "owl": (200, 200, 60)}
here = os.path.dirname(os.path.abspath(__file__))
for split, count in (("train", 8), ("test", 4)):
    for name, (r, g, b) in colors.items():
        d = os.path.join(here, split, name)
        os.makedirs(d, exist_ok=True)
        for i in range(count):
            rows = [[max(0, min(255, c + rng.randint(-40, 40))) for _ in range(16) for c in (r, g, b)] for _ in range(16)]
            png(os.path.join(d, "%02d.png" % i), rows)
