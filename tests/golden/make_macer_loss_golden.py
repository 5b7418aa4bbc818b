# Writes tests/golden/macer_loss.golden.safetensors: the MACER objective as MACER's official
# PyTorch code computes it, with torch-autograd gradients, for tests/test_macer_loss.cpp.
"""Golden fixture for the fused MACER objective (kernels/macer_loss.h).

Regenerate (deterministic: the same bytes every run, CPU only):

    /usr/bin/python3 tests/golden/make_macer_loss_golden.py            # into tests/golden/
    /usr/bin/python3 tests/golden/make_macer_loss_golden.py --out DIR  # somewhere else

Needs torch (1.13 was used) and numpy; safetensors is written by hand as in
make_model_golden.py.

The reference is the formulation of MACER's official training code (macer_train):
    p   = softmax(z, dim=2).mean(1);      CL = nll_loss(log(p + 1e-10), y, reduction=sum)
    q   = softmax(beta z, dim=2).mean(1); (q1, q2), (c1, c2) = torch.topk(q, 2)
    xi  = Normal(0, 1).icdf(q1) - Normal(0, 1).icdf(q2)
    act = ~isnan(xi) & ~isinf(xi) & (xi <= gamma) & (c1 == y)
          (the official code writes |icdf(q2) - icdf(q1)| <= gamma; xi >= 0, so it is the same)
    RL  = sigma / 2 * sum over act of (gamma - xi);   L = (CL + lambda RL) / B
    dlogits = dL/dz by torch autograd.
It runs in float64 on float32 logits, with one deliberate float32 step: q is rounded to
float32 before top-2 and icdf (straight through for the gradient), because q is a float32
quantity in the official code and in the engine (MacerSaved). So an input whose q1 rounds to
1 in float32 is inactive here exactly as there. The script also runs the official
formulation in plain float32 and asserts that it makes the same decisions (c1, c2, active)
and agrees with the float64 result to float32 accuracy.

Inputs are generated in "beta space": logits z = w / beta, so softmax(beta z) = softmax(w)
is controlled independently of beta. Each case starts with special inputs (their order is
in the metadata "caseN.inputs"; case 4 has gamma = 64 and only some of them):
    wrong_top       the top class of q is not the label (inactive)
    xi_gt_gamma     c1 = label but xi = gamma + 1 (inactive by the hinge)
    q1_to_one       1 - q1 ~ 1e-10: q1 rounds to 1 in float32, xi = inf (inactive)
    near_tie        q1, q2 within 0.2% with c1 = label (active)
    near_tie_wrong  the same with the label second (inactive)
then random inputs, resampled until they are away from every decision boundary (relative
gaps of q1-q2 and q2-q3 >= 2e-4, |xi - gamma| >= 0.02, 1 - q1 >= 1e-6): torch.topk's tie
order and float rounding cannot change the answer. Exact ties are tested in C++ instead.

Tensors, per case N (F64 unless said):
    caseN.hyper   (5) sigma, lambda, beta, gamma, k (all exact in float32)
    caseN.logits  (B*k, C) F32    caseN.labels (B) I32
    caseN.loss    (1)             caseN.cl, caseN.rl (B): -log(p[y] + 1e-10), sigma/2 (gamma - xi) or 0
    caseN.active  (B) F32         caseN.c1, caseN.c2 (B) I32
    caseN.q1, caseN.q2 (B)        (the float32-rounded values)
    caseN.dlogits (B*k, C)        d(loss)/d(logits)
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch

C = 10
CASES = [  # B inputs; hyperparameters exact in float32; lean: how far random inputs favour the label
    dict(sigma=0.25, lam=12.0, beta=16.0, gamma=8.0, k=4, batch=11, lean=2.0),
    dict(sigma=0.5, lam=4.0, beta=8.0, gamma=4.0, k=1, batch=6, lean=2.0),
    dict(sigma=1.0, lam=0.5, beta=1.0, gamma=2.5, k=3, batch=16, lean=2.0),
    dict(sigma=0.25, lam=16.0, beta=16.0, gamma=8.0, k=16, batch=10, lean=2.0),
    # gamma so large that only the infinite xi of q1 = 1.0f makes q1_to_one inactive
    dict(sigma=0.5, lam=2.0, beta=16.0, gamma=64.0, k=2, batch=7, lean=2.0,
         specials=["q1_to_one", "near_tie", "wrong_top"]),
]
SPECIALS = ["wrong_top", "xi_gt_gamma", "q1_to_one", "near_tie", "near_tie_wrong"]
MASK64 = (1 << 64) - 1


# ---- a counter-based generator (splitmix64), independent of numpy's versions ---------------
class Stream:
    def __init__(self, key):
        self.key, self.i = key, 0

    def uniform(self, n):
        with np.errstate(over="ignore"):
            z = np.uint64((self.key << 32) & MASK64) + np.arange(self.i, self.i + n, dtype=np.uint64)
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        self.i += n
        return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)

    def normal(self, n):  # Box-Muller
        u1, u2 = self.uniform(n), self.uniform(n)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)

    def integer(self, n):
        return int(self.uniform(1)[0] * n)


# ---- the reference ---------------------------------------------------------------------------
def macer_reference(z, y, sigma, lam, beta, gamma, k, round_q):
    """The official formulation; z (B*k, C) requires grad. Returns a dict of tensors."""
    B = y.shape[0]
    out = z.reshape(B, k, C)
    p = torch.softmax(out, dim=2).mean(1)
    logp = torch.log(p + 1e-10)
    cl = -logp.gather(1, y[:, None])[:, 0]                    # term CL, per input
    q = torch.softmax(beta * out, dim=2).mean(1)
    if round_q:  # q as a float32 quantity, straight through for the gradient
        q = q + (q.float().double() - q).detach()
    top = torch.topk(q, 2)
    q1, q2 = top[0][:, 0], top[0][:, 1]
    c1, c2 = top[1][:, 0], top[1][:, 1]
    m = torch.distributions.Normal(torch.tensor([0.0], dtype=z.dtype), torch.tensor([1.0], dtype=z.dtype))
    xi = m.icdf(q1) - m.icdf(q2)  # for the mask only: its gradient is never taken
    active = ~torch.isnan(xi) & ~torch.isinf(xi) & (xi <= gamma) & (c1 == y)
    # As the official code: icdf again on the selected inputs only, so that no icdf'(1) = inf
    # meets a zero gradient (0 * inf would be NaN).
    rl = torch.zeros(B, dtype=z.dtype)
    rl[active] = sigma / 2 * (gamma - (m.icdf(q1[active]) - m.icdf(q2[active])))  # term RL
    loss = (cl.sum() + lam * rl.sum()) / B
    (dz,) = torch.autograd.grad(loss, z)
    return dict(loss=loss.detach(), cl=cl.detach(), rl=rl.detach(), active=active, c1=c1, c2=c2,
                q1=q1.detach(), q2=q2.detach(), xi=xi.detach(), dlogits=dz, q=q.detach())


def special_input(kind, y, case, s):
    """beta-space logits (k, C) for one special input with label y."""
    k, gamma = case["k"], case["gamma"]
    w = np.full(C, -3.0) + 0.1 * s.normal(C)
    other = (y + 1 + s.integer(C - 1)) % C               # some class != y
    jitter = 0.01 * s.normal(k * C).reshape(k, C)
    if kind == "wrong_top":
        w[y], w[other] = 0.0, 1.5
        return w + 0.3 * s.normal(k * C).reshape(k, C)
    if kind == "xi_gt_gamma":
        # w[y] = 0, w[other] = -d, the rest -d - 2; d solved (in float64, no jitter) for xi = gamma + 1
        def xi_of(d):
            v = np.full(C, -d - 2.0)
            v[y], v[other] = 0.0, -d
            e = np.exp(v - v.max())
            q = torch.tensor(np.sort(e / e.sum())[::-1].copy(), dtype=torch.float64)
            u = math.sqrt(2.0) * torch.erfinv(2.0 * q[:2] - 1.0)   # Normal(0, 1).icdf
            return (u[0] - u[1]).item()
        lo, hi = 0.0, 40.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if xi_of(mid) < gamma + 1 else (lo, mid)
        w[:] = -lo - 2.0
        w[y], w[other] = 0.0, -lo
        return w + jitter
    if kind == "q1_to_one":
        w[:] = -25.0 - 0.5 * s.uniform(C)
        w[y] = 0.0
        return w + jitter
    # near ties: the two top classes 0.002 apart in beta space, identical copies
    if kind == "near_tie":
        w[y], w[other] = 0.0, -0.002
    else:  # near_tie_wrong: the label is second
        w[y], w[other] = -0.002, 0.0
    return np.tile(w, (k, 1))


def away_from_boundaries(res, b, gamma):
    q = np.sort(res["q"][b].numpy())[::-1]
    if (q[0] - q[1]) < 2e-4 * q[0] or (q[1] - q[2]) < 2e-4 * q[1]:
        return False
    xi = res["xi"][b].item()
    if math.isfinite(xi) and (abs(xi - gamma) < 0.02 or 1.0 - q[0] < 1e-6 or q[1] < 1e-7):
        return False
    return True


def make_case(n, case):
    s = Stream(1000 + n)
    k, B, beta = case["k"], case["batch"], case["beta"]
    labels = np.array([s.integer(C) for _ in range(B)], dtype=np.int32)
    hyper = (case["sigma"], case["lam"], beta, case["gamma"], k)
    rows = []
    specials = case.get("specials", SPECIALS)
    for b in range(B):
        if b < len(specials):
            w = special_input(specials[b], int(labels[b]), case, s)
            rows.append((w / beta).astype(np.float32))
            continue
        for _ in range(1000):  # random input, resampled until away from boundaries
            base = 2.0 * s.normal(C)
            if b % 3:  # two in three lean towards the label (active ones), one in three need not
                base[labels[b]] += case["lean"] * (1.0 + s.uniform(1)[0])
            w = base + 1.5 * s.normal(k * C).reshape(k, C)
            cand = (w / beta).astype(np.float32)
            z = torch.tensor(np.concatenate(rows + [cand]), dtype=torch.float64, requires_grad=True)
            res = macer_reference(z, torch.tensor(labels[:b + 1], dtype=torch.int64), *hyper, True)
            if away_from_boundaries(res, b, case["gamma"]):
                break
        else:
            raise RuntimeError("case %d input %d: no sample away from the boundaries" % (n, b))
        rows.append(cand)
    logits = np.concatenate(rows)
    y = torch.tensor(labels, dtype=torch.int64)
    z64 = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    ref = macer_reference(z64, y, *hyper, True)
    z32 = torch.tensor(logits, dtype=torch.float32, requires_grad=True)
    off = macer_reference(z32, y, *hyper, False)   # the official code as it runs, float32

    # What the special inputs must show, and the float32 official run agreeing with the reference
    act = ref["active"].numpy()
    expect = {"wrong_top": (False, lambda b: ref["c1"][b] != y[b]),
              "xi_gt_gamma": (False, lambda b: ref["c1"][b] == y[b] and math.isfinite(ref["xi"][b].item())
                              and ref["xi"][b].item() > case["gamma"] + 0.5),
              "q1_to_one": (False, lambda b: ref["q1"][b].item() == 1.0 and ref["c1"][b] == y[b]),
              "near_tie": (True, lambda b: ref["c1"][b] == y[b] and ref["q1"][b] - ref["q2"][b] < 2e-3 * ref["q1"][b]),
              "near_tie_wrong": (False, lambda b: ref["c2"][b] == y[b]
                                 and ref["q1"][b] - ref["q2"][b] < 2e-3 * ref["q1"][b])}
    for b, kind in enumerate(specials[:B]):
        want, cond = expect[kind]
        assert bool(act[b]) == want and bool(cond(b)), (n, kind, ref["xi"][b], ref["q1"][b], ref["q2"][b])
        assert away_from_boundaries(ref, b, case["gamma"]) or kind in ("near_tie", "near_tie_wrong",
                                                                       "q1_to_one")
    assert (off["active"] == ref["active"]).all() and (off["c1"] == ref["c1"]).all()
    assert (off["c2"] == ref["c2"]).all()
    loss_dev = abs(off["loss"].item() - ref["loss"].item()) / abs(ref["loss"].item())
    gscale = ref["dlogits"].abs().max().item()
    grad_dev = (off["dlogits"].double() - ref["dlogits"]).abs().max().item() / gscale
    assert loss_dev < 1e-4 and grad_dev < 1e-3, (loss_dev, grad_dev)

    p = "case%d." % n
    tensors = [
        (p + "hyper", np.array(hyper, dtype=np.float64)),
        (p + "logits", logits),
        (p + "labels", labels),
        (p + "loss", ref["loss"].numpy().reshape(1)),
        (p + "cl", ref["cl"].numpy()),
        (p + "rl", ref["rl"].numpy()),
        (p + "active", act.astype(np.float32)),
        (p + "c1", ref["c1"].numpy().astype(np.int32)),
        (p + "c2", ref["c2"].numpy().astype(np.int32)),
        (p + "q1", ref["q1"].numpy()),
        (p + "q2", ref["q2"].numpy()),
        (p + "dlogits", ref["dlogits"].numpy()),
    ]
    print("case %d: k %2d B %d sigma %.2f lambda %5.2f beta %4.1f gamma %.1f  loss %.6f  active %s  "
          "float32 official vs float64: loss %.1e, dlogits %.1e (of max)"
          % (n, k, B, case["sigma"], case["lam"], beta, case["gamma"], ref["loss"].item(),
             "".join("1" if a else "0" for a in act), loss_dev, grad_dev))
    return tensors, " ".join(specials[:B]) + " random" * max(0, B - len(specials))


DTYPES = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("float64"): "F64"}


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
    return os.path.getsize(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="output folder (default: this script's folder, tests/golden/)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    tensors, metadata = [], {"cases": str(len(CASES)), "classes": str(C)}
    for n, case in enumerate(CASES):
        t, inputs = make_case(n, case)
        tensors += t
        metadata["case%d.inputs" % n] = inputs
    path = os.path.join(args.out, "macer_loss.golden.safetensors")
    size = save_safetensors(path, tensors, metadata)
    print("wrote %s, %d bytes" % (path, size))
    assert size < 200 * 1024


if __name__ == "__main__":
    main()
