# Writes the PyTorch references of the training methods' losses for tests/test_method_losses.cpp:
# the attack loss and its seed, Consistency and SmoothMix, in float64 with torch autograd.
"""Fixtures for kernels/attack_loss.h, kernels/consistency_loss.h and kernels/smoothmix_loss.h.

Run by tests/test_method_losses.cpp at test time (nothing is stored in the repository):

    /usr/bin/python3 tests/golden/make_method_losses_fixtures.py --out DIR

writes DIR/method_losses.safetensors. Needs torch and numpy; deterministic (seeded generator).

Each loss is written the way its official code computes it, on float32 logits promoted to
float64, and differentiated by torch autograd:
  attack      (Salman et al., smoothing-adversarial, PGD_L2 multi-noise; SmoothMix's adversary)
              q = softmax(z).view(B, k, C).mean(1)[b, y_b];  loss_b = -log(q.clamp(min=1e-20))
              dlogits = d(scale * sum_b loss_b) / dz
  consistency (jh-jeong/smoothing-consistency, consistency.py, loss='default')
              F.cross_entropy over the B*k rows (mean) + mean over images of
              lbd * (1/m) sum_i F.kl_div(log_softmax(z_i), avg_softmax).sum(1)
              + eta * -(avg_softmax * log(avg_softmax.clamp(min=1e-20))).sum(1)
  smoothmix   (jh-jeong/smoothmix): F.cross_entropy over the clean rows (mean) + eta_w * mean over
              rows of [argmax avg_softmax_clean == y] * F.kl_div(log_softmax(z_mix), t).sum(1),
              t = (1 - lam) avg_softmax_clean + lam / C (not detached)

Tensors, per case NAME (F64 unless said; the metadata "cases" lists "kind:NAME" entries):
  NAME.dims (3) B, k, C      NAME.hyper: attack (1) scale; consistency (2) lambda, eta;
                             smoothmix (1) eta_w
  NAME.logits (B*k, C) F32   NAME.labels (B) I32     smoothmix: NAME.mixed (B*k, C) F32, NAME.lam (B) F32
  attack:      NAME.loss (B), NAME.dlogits (B*k, C)
  consistency: NAME.loss (1), NAME.ce (B), NAME.reg (B), NAME.dlogits (B*k, C)
  smoothmix:   NAME.loss (1), NAME.ce (B), NAME.mix (B), NAME.correct (B),
               NAME.dclean (B*k, C), NAME.dmixed (B*k, C)
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32"}


def save_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); header padded to 8 bytes; written via a .tmp name."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, a in tensors:
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(path + ".tmp", path)


def attack_reference(z32, y, k, scale):
    B, C = len(y), z32.shape[1]
    z = z32.double().requires_grad_()
    q = F.softmax(z, dim=1).view(B, k, C).mean(1)[torch.arange(B), y]
    loss = -torch.log(q.clamp(min=1e-20))
    (scale * loss.sum()).backward()
    return {"loss": loss.detach(), "dlogits": z.grad}


def consistency_reference(z32, y, k, lbd, eta):
    B, C = len(y), z32.shape[1]
    z = z32.double().requires_grad_()
    rows = z.view(B, k, C)
    logits = [rows[:, i, :] for i in range(k)]
    avg = sum(F.softmax(l, dim=1) for l in logits) / k
    kl = sum(F.kl_div(F.log_softmax(l, dim=1), avg, reduction="none").sum(1) for l in logits) / k
    ent = -(avg * torch.log(avg.clamp(min=1e-20))).sum(1)
    reg = lbd * kl + eta * ent
    xent = F.cross_entropy(z, y.repeat_interleave(k), reduction="none")
    loss = xent.mean() + reg.mean()
    loss.backward()
    return {"loss": loss.detach().view(1), "ce": xent.detach().view(B, k).mean(1), "reg": reg.detach(),
            "dlogits": z.grad}


def smoothmix_reference(zc32, zm32, y, lam32, k, eta_w):
    B, C = len(y), zc32.shape[1]
    zc = zc32.double().requires_grad_()
    zm = zm32.double().requires_grad_()
    lam = lam32.double()
    avg = F.softmax(zc, dim=1).view(B, k, C).mean(1)
    correct = (avg.argmax(1) == y).double()  # not differentiated
    t = (1 - lam)[:, None] * avg + lam[:, None] / C
    kl = F.kl_div(F.log_softmax(zm, dim=1).view(B, k, C), t[:, None, :].expand(B, k, C),
                  reduction="none").sum(-1)  # (B, k)
    xent = F.cross_entropy(zc, y.repeat_interleave(k), reduction="none")
    loss = xent.mean() + eta_w * (correct[:, None] * kl).mean()
    loss.backward()
    return {"loss": loss.detach().view(1), "ce": xent.detach().view(B, k).mean(1),
            "mix": (correct[:, None] * kl).detach().mean(1), "correct": correct, "dclean": zc.grad,
            "dmixed": zm.grad}


def underflow_rows(gen, B, k, C, gaps):
    """Rows 0 at one class and -gap elsewhere (gap per image from `gaps`), shuffled columns:
    softmax entries near exp(-gap), far below float32's range for the large gaps."""
    z = torch.zeros(B * k, C)
    for b in range(B):
        for i in range(k):
            g = gaps[(b + i) % len(gaps)]
            row = -g * torch.rand(C, generator=gen) - g / 2
            row[torch.randint(C, (1,), generator=gen)] = 0.0
            z[b * k + i] = row
    return z


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(20261129)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=gen) * std

    def labels(B, C):
        return torch.randint(C, (B,), generator=gen, dtype=torch.int64)

    tensors, names = [], []

    def put(kind, name, dims, hyper, inputs, ref):
        names.append(kind + ":" + name)
        tensors.append((name + ".dims", np.array(dims, dtype=np.float64)))
        tensors.append((name + ".hyper", np.array(hyper, dtype=np.float64)))
        for key, v in inputs.items():
            a = v.numpy()
            tensors.append((name + "." + key, a.astype(np.int32) if a.dtype == np.int64 else a))
        for key, v in ref.items():
            tensors.append((name + "." + key, v.detach().numpy().astype(np.float64)))

    # ---- attack loss ----
    def attack(name, z, y, k, scale):
        put("attack", name, [len(y), k, z.shape[1]], [scale], {"logits": z, "labels": y},
            attack_reference(z, y, k, scale))

    attack("attack_random", randn(7 * 4, 10, std=3.0), labels(7, 10), 4, 1.0)
    attack("attack_scaled", randn(5 * 2, 10, std=2.0), labels(5, 10), 2, 0.2)
    attack("attack_k1", randn(6, 10, std=3.0), labels(6, 10), 1, 1.0)
    attack("attack_c1000", randn(3 * 2, 1000, std=4.0), labels(3, 1000), 2, 1.0)
    # The clamp and underflow: label logit far below the rest (p_y ~ exp(-gap)).
    z = randn(6 * 3, 10)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    z[0:3, 0] -= 60.0      # image 0: q ~ 1e-27 < 1e-20: clamped, loss -log 1e-20, zero seed
    z[3:6, 1] -= 40.0      # image 1: q ~ 4e-19 > 1e-20: not clamped, p_y far below 1 everywhere
    z[6, 2] -= 120.0       # image 2: copy 0's p_y ~ 1e-53 (under float), copies 1, 2 fine
    z[9:11, 3] -= 200.0    # image 3: two copies under float, one fine
    z[12:15, 4] -= 150.0   # image 4: all three ~ 1e-66: clamped
    attack("attack_clamp", z, y, 3, 1.0)

    # ---- Consistency ----
    def consistency(name, z, y, k, lbd, eta):
        put("consistency", name, [len(y), k, z.shape[1]], [lbd, eta], {"logits": z, "labels": y},
            consistency_reference(z, y, k, lbd, eta))

    consistency("consistency_random", randn(6 * 2, 10, std=2.0), labels(6, 10), 2, 10.0, 0.5)
    consistency("consistency_k4", randn(5 * 4, 10, std=3.0), labels(5, 10), 4, 20.0, 0.5)
    consistency("consistency_k1", randn(4, 10, std=2.0), labels(4, 10), 1, 10.0, 0.5)
    consistency("consistency_eta_lambda", randn(4 * 3, 7, std=2.0), labels(4, 7), 3, 3.0, 3.0)
    consistency("consistency_c1000", randn(2 * 2, 1000, std=5.0), labels(2, 1000), 2, 10.0, 0.5)
    # pbar under the entropy clamp (1e-20) and under float32's range, double still fine
    consistency("consistency_underflow", underflow_rows(gen, 4, 2, 10, [30.0, 90.0, 300.0]), labels(4, 10), 2,
                10.0, 0.5)

    # ---- SmoothMix ----
    def smoothmix(name, zc, zm, y, lam, k, eta_w):
        put("smoothmix", name, [len(y), k, zc.shape[1]], [eta_w],
            {"logits": zc, "mixed": zm, "labels": y, "lam": lam}, smoothmix_reference(zc, zm, y, lam, k, eta_w))

    def leaning(B, k, C, std, lean):
        """Clean logits whose copies lean toward the label on even images: both indicator values."""
        y = labels(B, C)
        z = randn(B * k, C, std=std)
        for b in range(0, B, 2):
            z[b * k:(b + 1) * k, y[b]] += lean
        return z, y

    def lam_of(B):
        return torch.rand(B, generator=gen) / 2

    zc, y = leaning(6, 2, 10, 2.0, 4.0)
    smoothmix("smoothmix_random", zc, randn(12, 10, std=2.0), y, lam_of(6), 2, 2.5)
    zc, y = leaning(5, 4, 10, 2.0, 4.0)
    smoothmix("smoothmix_k4", zc, randn(20, 10, std=3.0), y, lam_of(5), 4, 5.0)
    zc, y = leaning(4, 1, 10, 2.0, 4.0)
    smoothmix("smoothmix_k1", zc, randn(4, 10, std=2.0), y, lam_of(4), 1, 5.0)
    zc, y = leaning(2, 2, 1000, 3.0, 8.0)
    smoothmix("smoothmix_c1000", zc, randn(4, 1000, std=3.0), y, lam_of(2), 2, 5.0)
    # lam at its ends (0 and 1/2) and pbar underflowing: t_c is pbar_c itself at lam = 0
    zc = underflow_rows(gen, 4, 2, 10, [30.0, 90.0, 300.0])
    y = torch.tensor([int(zc[b * 2].argmax()) for b in range(4)])  # mostly right: the KL term is on
    smoothmix("smoothmix_underflow", zc, randn(8, 10, std=3.0), y, torch.tensor([0.0, 0.5, 0.0, 0.25]), 2, 5.0)

    save_safetensors(os.path.join(args.out, "method_losses.safetensors"), tensors, {"cases": ",".join(names)})


if __name__ == "__main__":
    main()
