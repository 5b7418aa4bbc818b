# PyTorch float64 reference for tests/test_attacks.cpp: SmoothAdv's PGD and SmoothMix's adversary
# on a model whose weights, inputs and noise the C++ test writes; run by the test at test time.
"""Usage: /usr/bin/python3 tests/golden/attack_reference.py IN.safetensors OUT.safetensors

IN (written by tests/test_attacks.cpp): the state_dict of a Cifar ResNet-20 or LeNet (PyTorch's
names, as layers/state.h writes them), "x" (B,C,H,W) in [0, 1], "noise" (B*k,C,H,W) (copy j of
image b at row b*k + j: the training step's sigma * n), "labels" (B) I32, and metadata: model
("resnet20" | "lenet"), loss ("gaussian": mean cross-entropy over the B*k rows; "soft_smoothed":
SPEC.md's L_att, summed over images), attack ("pgd" | "smoothmix"), eps, steps, alpha.

The model runs in eval mode in float64 (batch norm with its running statistics) and the input
gradient comes from torch.autograd. PGD follows Salman et al.'s PGD_L2 (attacks.py) with SPEC.md's
step 2 eps / T; SmoothMix follows SmoothMix_PGD.attack (mix_step 0).

OUT: "grad0" (B,C,H,W), the input gradient at x (the k copies' gradients added), and "x_adv"
after the given steps, both F64.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_convert_fixtures import load_safetensors  # noqa: E402  (same folder)
from make_model_golden import CifarResNet, LeNet, save_safetensors  # noqa: E402

import numpy as np  # noqa: E402


def read_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def main():
    src, out = sys.argv[1], sys.argv[2]
    meta = read_metadata(src)
    t = load_safetensors(src)
    model = CifarResNet(20) if meta["model"] == "resnet20" else LeNet()
    state = {k: torch.from_numpy(v).double() for k, v in t.items() if k not in ("x", "noise", "labels")}
    missing = model.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing.missing_keys), missing
    model = model.double().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(t["x"]).double()
    noise = torch.from_numpy(t["noise"]).double()
    y = torch.from_numpy(t["labels"]).long()
    b = x.shape[0]
    k = noise.shape[0] // b

    def input_grad(point):
        point = point.detach().requires_grad_(True)
        logits = model(point.repeat_interleave(k, dim=0) + noise)
        if meta["loss"] == "gaussian":
            loss = F.cross_entropy(logits, y.repeat_interleave(k))
        else:
            p = F.softmax(logits, dim=1).view(b, k, -1).mean(1)
            loss = F.nll_loss(torch.log(p.clamp(min=1e-20)), y, reduction="sum")
        return torch.autograd.grad(loss, [point])[0]

    def norms(v):
        return v.reshape(b, -1).norm(dim=1).view(-1, 1, 1, 1)

    steps = int(meta["steps"])
    grad0 = input_grad(x)
    if meta["attack"] == "pgd":
        eps = float(meta["eps"])
        delta = torch.zeros_like(x)
        for _ in range(steps):
            g = input_grad(x + delta)
            delta = delta + (2 * eps / steps) * g / norms(g)
            delta = (x + delta).clamp(0, 1) - x
            delta = delta.renorm(p=2, dim=0, maxnorm=eps)
        adv = x + delta
    else:
        alpha = float(meta["alpha"])
        adv = x.clone()
        for _ in range(steps):
            g = input_grad(adv)
            adv = (adv + alpha * g / (norms(g) + 1e-8)).clamp(0, 1)
    save_safetensors(out, [("grad0", grad0.numpy().astype(np.float64)), ("x_adv", adv.numpy().astype(np.float64))],
                     {})


if __name__ == "__main__":
    main()
