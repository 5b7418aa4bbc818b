# Writes the tiny SVHN-format fixtures read by tests/test_data_formats.cpp, with scipy's own
# MAT-file writer (an independent check on data/mat5.cpp). Run: python3 make_svhn_fixtures.py
import numpy as np
import scipy.io


def images(n):
    # X[r, c, ch, i] = (7 r + 13 c + 50 ch + 31 i) mod 256, as the test expects.
    r, c, ch, i = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), np.arange(n), indexing="ij")
    return ((7 * r + 13 * c + 50 * ch + 31 * i) % 256).astype(np.uint8)


# train: zlib-compressed elements, y as double, plus variables the reader must skip.
scipy.io.savemat("train_32x32.mat",
                 {"X": images(3), "y": np.array([[10.0], [1.0], [5.0]]),
                  "note": "skip me", "meta": {"a": 1}},
                 do_compression=True, format="5")
# test: plain elements, y as uint8.
scipy.io.savemat("test_32x32.mat", {"X": images(2), "y": np.array([[3], [10]], dtype=np.uint8)},
                 do_compression=False, format="5")
