#!/usr/bin/env python3
# Run by tests/test_convert.cpp: loads the .pth files scripts/convert_checkpoint.py --to-pth wrote
# into fresh PyTorch models with strict=True and compares them with the checkpoints they came from.
"""Round trip PyTorch -> safetensors -> .pth, checked in PyTorch.

    /usr/bin/python3 tests/golden/check_pth_roundtrip.py ARCH:ORIGINAL.pth:EXPORTED.pth ...

ARCH: resnet18 ... resnet152 (torchvision.models, 10 classes), resnet20 (make_model_golden's
Cifar ResNet) or lenet (its LeNet). ORIGINAL is the file that was converted (a plain state_dict,
MACER's {'net': ...} or Cohen's {'state_dict': '1.'...}). For each pair: EXPORTED's keys are the
fresh model's state_dict keys in the same order; load_state_dict(EXPORTED, strict=True) works;
every tensor but num_batches_tracked equals ORIGINAL's bit for bit; and the eval-mode float32
logits of the two models on 2 random images are identical (torch.equal). Prints "ok ARCH" per
pair, or "FAIL ARCH: why" and exits 1.

ORIGINAL may instead be a .safetensors holding 'input' and 'logits' (F32) that this engine
computed from the checkpoint EXPORTED came from (one macer_train made): then PyTorch's eval-mode
logits of EXPORTED on 'input' must be within 1e-4 (1 + |logit|) of them ("ok ARCH (this engine's
logits)").
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_golden import CifarResNet, LeNet  # noqa: E402  (same folder)


def build(arch):
    if arch == "lenet":
        return LeNet(), (1, 28, 28)
    if arch == "resnet20":
        return CifarResNet(20), (3, 32, 32)
    import torchvision.models
    return getattr(torchvision.models, arch)(num_classes=10), (3, 64, 64)


def original_state(obj):
    """The network's own state_dict inside a MACER, Cohen or plain file."""
    if "net" in obj:
        obj = obj["net"]
    elif "state_dict" in obj:
        obj = {k[len("1."):]: v for k, v in obj["state_dict"].items()}
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_safetensors(path):
    """{name: float32 tensor} of an F32 safetensors file (json and struct: no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: torch.from_numpy(np.frombuffer(body[h["data_offsets"][0]:h["data_offsets"][1]], dtype="<f4")
                                .reshape(h["shape"]).copy())
            for k, h in header.items() if k != "__metadata__"}


def check(arch, original_path, exported_path):
    got = torch.load(exported_path, map_location="cpu")
    a, shape = build(arch)
    b, _ = build(arch)
    if list(got.keys()) != list(b.state_dict().keys()):
        differ = sorted(set(got) ^ set(b.state_dict()))
        return "keys differ from %s's state_dict (or their order): %d differ, %s" % (arch, len(differ), differ[:6])
    b.load_state_dict(got, strict=True)
    if original_path.endswith(".safetensors"):  # this engine's logits of the checkpoint
        ours = load_safetensors(original_path)
        with torch.no_grad():
            theirs = b.eval()(ours["input"])
        worst = float(((theirs - ours["logits"]).abs() / (1 + ours["logits"].abs())).max())
        return None if worst <= 1e-4 else "logits differ from this engine's by %g (scaled)" % worst
    want = original_state(torch.load(original_path, map_location="cpu"))
    a.load_state_dict(want, strict=True)
    for k, v in want.items():
        if not k.endswith("num_batches_tracked") and not torch.equal(v, got[k]):
            return "tensor %s differs" % k
    x = torch.rand((2,) + shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        if not torch.equal(a.eval()(x), b.eval()(x)):
            return "logits differ"
    return None


def main():
    torch.set_num_threads(1)
    failed = False
    for item in sys.argv[1:]:
        arch, original, exported = item.split(":")
        why = check(arch, original, exported)
        label = arch + (" (this engine's logits)" if original.endswith(".safetensors") else "")
        print("ok %s" % label if why is None else "FAIL %s: %s" % (label, why))
        failed = failed or why is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
