#!/usr/bin/env python3
# Run by tests/test_convert.cpp: writes PyTorch checkpoints of one ResNet-20 in MACER's, Cohen's
# and plain layouts (and wrong ones) with PyTorch's logits, for scripts/convert_checkpoint.py.
"""Checkpoint-conversion fixtures, made at test time from committed bytes.

    /usr/bin/python3 tests/golden/make_convert_fixtures.py --out DIR

No new weights are committed: the ResNet-20 state is tests/golden/resnet20.weights.safetensors
(randomised BN weights and running statistics, so that a wrong mapping shows) and the inputs
are the 4 images 'input' of tests/golden/resnet20.golden.safetensors, both written by
make_model_golden.py. Written into DIR with torch.save, as the releases hold them:

  macer.pth          {'net': state_dict, 'epoch': 440}                 MACER's main.py
  macer_module.pth   the same with 'module.' keys (a DataParallel model saved whole)
  cohen.pth          {'epoch', 'arch': 'cifar_resnet20', 'state_dict' under '1.', 'optimizer'}
                     Cohen's train.py, whose model is Sequential(NormalizeLayer, net); in
                     PyTorch's legacy (pre-1.6, non-zip) format, as Cohen's 2019 release
  cohen_module.pth   the same under '1.module.' (how Cohen's ResNet-50 is saved)
  plain.pth          the bare state_dict
  macer_lenet.pth    MACER's MNIST LeNet, {'net': state_dict, 'epoch': 100} (seeded PyTorch init)
  bad_toplevel.pth   {'model': state_dict}: no known layout
  bad_key.pth        MACER's layout with one tensor renamed (layer2.1.conv1 -> layer2.1.convA)
  bad_shape.pth      MACER's layout with fc.weight transposed
  bad_cohen.pth      Cohen's layout with one tensor outside '1.' ('0.means')
  bad_family.pth     the names of a ResNet with BasicBlocks 3-4-6-2 in layer1-4 (no torchvision
                     depth; one-element tensors: only the names are read before the refusal)
  names_resnet18.pth the names of torchvision's resnet18 with one-element tensors (the input-size
                     check comes before the shapes are)
  expected.safetensors  input (4,3,32,32) F32; logits_plain, logits_cohen, logits_mean_only
                     (Cifar-10 means, sds 1: SmoothAdv's) and logits_half (means and sds 0.5) (4,10) F64:
                     eval-mode logits of the network alone and of Cohen's Sequential(
                     NormalizeLayer(Cifar-10 means and sds), net), computed in float64 on the
                     float32 weights, inputs and statistics.
  expected_lenet.safetensors  input (3,1,28,28) F32 and logits (3,10) F64 of that LeNet.

With --resnet50 also torchvision's ResNet-50 (random weights, seeded; BN statistics randomised),
about 100 MB:
  cohen_resnet50.pth    {'arch': 'resnet50', 'state_dict' under '1.module.'}: Cohen's ImageNet model
  expected_resnet50.safetensors  input (1,3,224,224) F32 and logits (1,1000) F64 of
                     Sequential(NormalizeLayer(ImageNet means and sds), resnet50) in float64

With --family also torchvision's ResNet family at 10 classes (random weights, seeded; BN terms and
statistics randomised), 45 to 233 MB each:
  tv_family_resnet18.pth ... tv_family_resnet152.pth  torchvision's resnet{18,34,50,101,152}(num_classes=10)
                     .state_dict(), the plain layout
  expected_family.safetensors  input (2,3,64,64) F32 and logits_resnet18 ... logits_resnet152
                     (2,10) F64 of Sequential(NormalizeLayer(ImageNet means and sds), net) in float64
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_model_golden import CifarResNet, LeNet, save_safetensors  # noqa: E402  (same folder)

CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2023, 0.1994, 0.2010]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def load_safetensors(path):
    """{name: numpy array} of an F32/F64/I32/I64 safetensors file."""
    kinds = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=kinds[h["dtype"]]).reshape(h["shape"]).copy()
    return out


class NormalizeLayer(nn.Module):
    """Cohen's first layer: (x - mean[c]) / sd[c], with float32 constants and no state."""

    def __init__(self, mean, sd):
        super().__init__()
        self.mean = torch.tensor(mean)  # plain attributes, as in Cohen's code: not in state_dict
        self.sd = torch.tensor(sd)

    def forward(self, x):
        return (x - self.mean.to(x.dtype)[None, :, None, None]) / self.sd.to(x.dtype)[None, :, None, None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--resnet50", action="store_true", help="also torchvision's ResNet-50 (needs torchvision)")
    parser.add_argument("--family", action="store_true",
                        help="also torchvision's resnet18 ... resnet152 at 10 classes, logits at 64x64")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    weights = load_safetensors(os.path.join(HERE, "resnet20.weights.safetensors"))
    x = load_safetensors(os.path.join(HERE, "resnet20.golden.safetensors"))["input"]
    net = CifarResNet(20)
    sd = {k: torch.from_numpy(v) for k, v in weights.items()}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    sd = net.state_dict()  # with num_batches_tracked, as a real checkpoint has it

    def save(name, obj):
        torch.save(obj, os.path.join(args.out, name))

    save("macer.pth", {"net": sd, "epoch": 440})
    save("macer_module.pth", {"net": {"module." + k: v for k, v in sd.items()}, "epoch": 440})
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9).state_dict()
    torch.save({"epoch": 90, "arch": "cifar_resnet20", "state_dict": {"1." + k: v for k, v in sd.items()},
                "optimizer": optimizer}, os.path.join(args.out, "cohen.pth"), _use_new_zipfile_serialization=False)
    save("cohen_module.pth", {"epoch": 90, "arch": "cifar_resnet20",
                              "state_dict": {"1.module." + k: v for k, v in sd.items()}, "optimizer": optimizer})
    save("plain.pth", sd)
    save("bad_toplevel.pth", {"model": sd})
    save("bad_key.pth", {"net": {k.replace("layer2.1.conv1", "layer2.1.convA"): v for k, v in sd.items()},
                         "epoch": 1})
    save("bad_shape.pth", {"net": {k: (v.t().contiguous() if k == "fc.weight" else v) for k, v in sd.items()},
                           "epoch": 1})
    bad_cohen = {"1." + k: v for k, v in sd.items()}
    bad_cohen["0.means"] = torch.tensor(CIFAR10_MEAN)
    save("bad_cohen.pth", {"arch": "cifar_resnet20", "state_dict": bad_cohen})
    bad_family = {"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}
    for stage, blocks in enumerate((3, 4, 6, 2)):
        for b in range(blocks):
            bad_family["layer%d.%d.conv1.weight" % (stage + 1, b)] = torch.zeros(1)
    save("bad_family.pth", bad_family)
    names18 = {"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}
    for stage in range(4):
        for b in range(2):
            names18["layer%d.%d.conv1.weight" % (stage + 1, b)] = torch.zeros(1)
    save("names_resnet18.pth", names18)

    torch.manual_seed(1)
    lenet = LeNet()
    save("macer_lenet.pth", {"net": lenet.state_dict(), "epoch": 100})
    xl = np.random.default_rng(28).uniform(0.0, 1.0, (3, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        logits_lenet = lenet.double().eval()(torch.from_numpy(xl).double()).numpy()
    save_safetensors(os.path.join(args.out, "expected_lenet.safetensors"), [("input", xl), ("logits", logits_lenet)],
                     {"source": "tests/golden/make_convert_fixtures.py"})

    net = net.double().eval()
    cohen = nn.Sequential(NormalizeLayer(CIFAR10_MEAN, CIFAR10_STD), net).eval()
    with torch.no_grad():
        xt = torch.from_numpy(x).double()
        logits_plain = net(xt).numpy()
        logits_cohen = cohen(xt).numpy()
        # SmoothAdv's first layer subtracts the mean only; inputs in [-1, 1]: mean 0.5, sd 0.5.
        logits_mean_only = nn.Sequential(NormalizeLayer(CIFAR10_MEAN, [1.0, 1.0, 1.0]), net)(xt).numpy()
        logits_half = nn.Sequential(NormalizeLayer([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]), net)(xt).numpy()
    save_safetensors(os.path.join(args.out, "expected.safetensors"),
                     [("input", x), ("logits_plain", logits_plain), ("logits_cohen", logits_cohen),
                      ("logits_mean_only", logits_mean_only), ("logits_half", logits_half)],
                     {"source": "tests/golden/make_convert_fixtures.py"})
    if args.resnet50:
        make_resnet50(args.out)
    if args.family:
        make_family(args.out)
    print("fixtures in %s" % args.out)


def randomize_batchnorms(net, rng):
    """BN statistics and affine terms that matter, as for ResNet-20: a wrong mapping shows."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.0, c).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rng.uniform(-0.1, 0.1, c).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(rng.normal(0.0, 0.1, c).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))


def make_family(out):
    import torchvision.models
    rng = np.random.default_rng(18)
    x = rng.uniform(0.0, 1.0, (2, 3, 64, 64)).astype(np.float32)
    arrays = [("input", x)]
    for depth in (18, 34, 50, 101, 152):
        torch.manual_seed(depth)
        net = getattr(torchvision.models, "resnet%d" % depth)(num_classes=10)
        randomize_batchnorms(net, rng)
        torch.save(net.state_dict(), os.path.join(out, "tv_family_resnet%d.pth" % depth))
        model = nn.Sequential(NormalizeLayer(IMAGENET_MEAN, IMAGENET_STD), net.double()).eval()
        with torch.no_grad():
            arrays.append(("logits_resnet%d" % depth, model(torch.from_numpy(x).double()).numpy()))
    save_safetensors(os.path.join(out, "expected_family.safetensors"), arrays,
                     {"source": "tests/golden/make_convert_fixtures.py --family"})


def make_resnet50(out):
    from torchvision.models import resnet50
    torch.manual_seed(0)
    net = resnet50()
    rng = np.random.default_rng(50)
    randomize_batchnorms(net, rng)
    sd = net.state_dict()
    torch.save({"epoch": 90, "arch": "resnet50", "state_dict": {"1.module." + k: v for k, v in sd.items()}},
               os.path.join(out, "cohen_resnet50.pth"))
    x = rng.uniform(0.0, 1.0, (1, 3, 224, 224)).astype(np.float32)
    model = nn.Sequential(NormalizeLayer(IMAGENET_MEAN, IMAGENET_STD), net.double()).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x).double()).numpy()
    save_safetensors(os.path.join(out, "expected_resnet50.safetensors"), [("input", x), ("logits", logits)],
                     {"source": "tests/golden/make_convert_fixtures.py"})


if __name__ == "__main__":
    main()
