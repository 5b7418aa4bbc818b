# Writes the PyTorch golden fixtures that tests/test_golden.cpp compares the engine against:
# LeNet and the Cifar ResNet-20 of layers/models.cpp, one training-mode step each.
"""Golden fixtures for tests/test_golden.cpp.

Regenerate (deterministic: the same bytes every run, CPU only):

    /usr/bin/python3 tests/golden/make_model_golden.py            # writes into tests/golden/
    /usr/bin/python3 tests/golden/make_model_golden.py --out DIR  # somewhere else (to compare)

Needs torch (1.13 was used) and numpy; the safetensors format is written by hand here
(8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
raw little-endian data), so the safetensors package is not needed.

What is computed. For each model: the weights are set, one batch of 4 inputs with labels goes
through the model in TRAINING mode (batch-statistics BatchNorm, running statistics updated
with momentum 0.1 and the unbiased variance), then the mean cross-entropy, then backward.
The reference runs in float64 on float32-representable weights and inputs, so it is the
exact answer up to float64 rounding; the engine's float32 result is compared with it.

Files (all F32 unless said; together about 1.3 MB):

  resnet20.weights.safetensors  the ResNet-20 state_dict under PyTorch's names (parameters
                                and BN running statistics, no num_batches_tracked): a
                                checkpoint as a PyTorch user would save it. BN weights,
                                biases and running statistics are randomised so that they
                                matter.
  resnet20.golden.safetensors   input (4,3,32,32), labels (4) I32, logits (4,10) from the
                                training-mode forward, loss (1) F64, running_after.<bn>.
                                running_mean / running_var after that forward, logits_eval
                                (4,10) from an eval-mode forward with those updated
                                statistics, and the gradient records described below.
  lenet.golden.safetensors      input (4,1,28,28), labels, logits, loss and gradient records.
                                LeNet's 431,080 weights (1.7 MB) are NOT stored: they come
                                from the counter-based generator below, which the C++ test
                                re-implements; the recipe (key and bound per tensor) is in
                                the file's metadata as "init.<name>" = "<key> <bound> <shape>"
                                (shape as comma-separated dimensions).

Counter-based generator (splitmix64; the C++ side has the same five lines):
    z = key * 2^32 + i  (mod 2^64);  z += 0x9E3779B97F4A7C15;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
    z ^= z >> 31;   u(key, i) = (z >> 40) / 2^24  in [0, 1), exact in float32
    LeNet weight element i of a tensor = float32(bound * (2 u(key, i) - 1)), computed in
    float64 then rounded; bound = 1/sqrt(fan_in) (PyTorch's default initialisation range).

Gradient records. Storing every gradient of both models would take 2.8 MB, so each
parameter's gradient g (n elements, flattened in row-major order) is recorded as:
  grad_stats.<name>  F64 (6): [ ||g||_2, sum(g), <g, r1>, <g, r2>, <g, r3>, <g, r4> ] with
                     r_j[i] = 2 u(j, i) - 1 (keys 1..4). Four random projections see an
                     error anywhere in the tensor: an error e moves <g, r_j> by about
                     ||e||_2 / sqrt(3) each.
  grad.<name>        the full gradient, when n <= 2560 (every BN parameter and bias, the
                     first conv, the 1x1 projections, layer1's convs, ResNet-20's fc)
  grad_sample.<name> otherwise: 256 elements g[(k * n) // 256], k = 0..255, so element-wise
                     errors in any part of the tensor are caught as well.
So every parameter gradient is checked by norm, sum and projections, and elementwise either
in full or at 256 spread positions.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4
FULL_GRAD_MAX = 2560
SAMPLES = 256
PROJECTIONS = 4
MASK64 = (1 << 64) - 1


# ---- the counter-based generator -------------------------------------------------------------
def fixture_uniform(key, n):
    """u(key, i) for i in [0, n), float64 (exactly representable in float32)."""
    with np.errstate(over="ignore"):
        z = (np.uint64((key << 32) & MASK64) + np.arange(n, dtype=np.uint64))
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


# ---- safetensors, written by hand --------------------------------------------------------------
DTYPES = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("float64"): "F64",
          np.dtype("int64"): "I64"}


def save_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); written in that order, header padded to 8 bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
    return os.path.getsize(path)


# ---- the models, as layers/models.cpp builds them ------------------------------------------------
class LeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(h + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for s in range(3):
            width = 16 << s
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, width, 2 if (b == 0 and s > 0) else 1))
                cin = width
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        h = F.avg_pool2d(h, h.shape[2])
        return self.fc(h.flatten(1))


# ---- one training-mode step and its records ------------------------------------------------------
def state_items(model):
    return [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]


def gradient_records(model):
    out = []
    for name, p in model.named_parameters():
        g = p.grad.detach().reshape(-1).numpy().astype(np.float64)
        n = g.size
        stats = [np.sqrt(np.sum(g * g)), np.sum(g)]
        stats += [np.dot(g, 2.0 * fixture_uniform(j, n) - 1.0) for j in range(1, PROJECTIONS + 1)]
        out.append(("grad_stats." + name, np.array(stats, dtype=np.float64)))
        if n <= FULL_GRAD_MAX:
            out.append(("grad." + name, p.grad.detach().numpy().astype(np.float32)))
        else:
            idx = (np.arange(SAMPLES, dtype=np.int64) * n) // SAMPLES
            out.append(("grad_sample." + name, g[idx].astype(np.float32)))
    return out


def train_step(model, x, labels):
    """Training-mode forward, mean cross-entropy, backward. Returns (logits, loss)."""
    model.train()
    model.zero_grad()
    logits = model(torch.from_numpy(x).double())
    loss = F.cross_entropy(logits, torch.from_numpy(labels).long())
    loss.backward()
    return logits.detach().numpy(), loss.item()


def make_resnet20(out_dir, rng):
    model = CifarResNet(20)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            leaf = name.rsplit(".", 1)[1]
            is_bn = t.dim() == 1 and "fc" not in name
            if t.dim() == 4:  # convs: N(0, sqrt(2 / (k*k*out))), as models.cpp initialises them
                std = math.sqrt(2.0 / (t.shape[2] * t.shape[3] * t.shape[0]))
                v = rng.normal(0.0, std, t.shape)
            elif name == "fc.weight" or name == "fc.bias":
                v = rng.uniform(-0.125, 0.125, t.shape)  # 1/sqrt(64), PyTorch's default range
            elif is_bn and leaf == "weight":
                v = rng.uniform(0.5, 1.5, t.shape)
            elif is_bn and leaf == "bias":
                v = rng.uniform(-0.2, 0.2, t.shape)
            elif leaf == "running_mean":
                v = rng.normal(0.0, 0.2, t.shape)
            elif leaf == "running_var":
                v = rng.uniform(0.5, 2.0, t.shape)
            else:
                raise RuntimeError("unexpected state entry " + name)
            t.copy_(torch.from_numpy(v.astype(np.float32)))
    weights = [(k, v.numpy().copy()) for k, v in state_items(model)]
    size_w = save_safetensors(os.path.join(out_dir, "resnet20.weights.safetensors"), weights,
                              {"format": "pt", "model": "resnet20",
                               "source": "tests/golden/make_model_golden.py"})

    model = model.double()
    x = rng.uniform(0.0, 1.0, (BATCH, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH).astype(np.int32)
    logits, loss = train_step(model, x, labels)
    running = [("running_after." + k, v.numpy().astype(np.float32))
               for k, v in state_items(model) if "running_" in k]
    model.eval()
    with torch.no_grad():
        logits_eval = model(torch.from_numpy(x).double()).numpy()
    golden = [("input", x), ("labels", labels), ("logits", logits.astype(np.float32)),
              ("loss", np.array([loss], dtype=np.float64)),
              ("logits_eval", logits_eval.astype(np.float32))] + running + gradient_records(model)
    size_g = save_safetensors(os.path.join(out_dir, "resnet20.golden.safetensors"), golden,
                              {"model": "resnet20", "batch": str(BATCH),
                               "source": "tests/golden/make_model_golden.py"})
    params = sum(p.numel() for p in model.parameters())
    return size_w + size_g, params, loss


def make_lenet(out_dir, rng):
    model = LeNet()
    metadata = {"model": "lenet", "batch": str(BATCH), "weights": "counter-based generator",
                "source": "tests/golden/make_model_golden.py"}
    with torch.no_grad():
        for key, (name, p) in enumerate(model.named_parameters(), start=1001):
            owner = getattr(model, name.split(".")[0])
            fan_in = owner.weight[0].numel()  # in*k*k for the convs, in for the linears
            bound = 1.0 / math.sqrt(fan_in)
            v = (bound * (2.0 * fixture_uniform(key, p.numel()) - 1.0)).astype(np.float32)
            p.copy_(torch.from_numpy(v.reshape(tuple(p.shape))))
            metadata["init." + name] = "%d %s %s" % (key, repr(bound),
                                                     ",".join(str(d) for d in p.shape))
    model = model.double()
    x = rng.uniform(0.0, 1.0, (BATCH, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH).astype(np.int32)
    logits, loss = train_step(model, x, labels)
    golden = [("input", x), ("labels", labels), ("logits", logits.astype(np.float32)),
              ("loss", np.array([loss], dtype=np.float64))] + gradient_records(model)
    size = save_safetensors(os.path.join(out_dir, "lenet.golden.safetensors"), golden, metadata)
    params = sum(p.numel() for p in model.parameters())
    return size, params, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="output folder (default: this script's folder, tests/golden/)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(20200101)
    total = 0
    for name, make in (("resnet20", make_resnet20), ("lenet", make_lenet)):
        size, params, loss = make(args.out, rng)
        total += size
        print("%-9s %8d parameters, loss %.6f, %8d bytes" % (name, params, loss, size))
    print("total %d bytes in %s" % (total, args.out))
    if total >= 2 << 20:
        sys.exit("fixtures exceed 2 MB")


if __name__ == "__main__":
    main()
