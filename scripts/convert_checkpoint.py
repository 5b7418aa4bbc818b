#!/usr/bin/env python3
# Converts PyTorch checkpoints made elsewhere (MACER's and Cohen's releases, plain state_dicts,
# torchvision's ResNet-50) into this engine's safetensors checkpoints for bin/macer_certify.
"""Convert a PyTorch checkpoint into a macer-engine checkpoint (safetensors).

    scripts/convert_checkpoint.py IN.pth OUT.safetensors [--format auto|macer|cohen|plain]
        [--model NAME] [--dataset NAME] [--sigma S]
        [--normalize auto|none|cifar10|imagenet|cifar10-mean|imagenet-mean|half]
        [--normalize-mean M,M,M [--normalize-std S,S,S]]
        [--class-names FILE|none]

Formats (recognised from the file unless --format says):
  macer   {'net': state_dict, 'epoch': N}        MACER's main.py (plain model keys; a
                                                 'module.' prefix is stripped too)
  cohen   {'arch': A, 'state_dict': sd, ...}     Cohen et al.'s train.py: the model is
                                                 Sequential(NormalizeLayer, net), so keys read
                                                 '1.conv1.weight', and '1.module.conv1.weight'
                                                 for ResNet-50 (DataParallel). NormalizeLayer
                                                 has no tensors, so the file cannot tell its
                                                 normalization: Cohen's data set means and
                                                 standard deviations are assumed, and said so
                                                 (SmoothAdv's models subtract the mean only:
                                                 --normalize cifar10-mean).
  plain   a bare state_dict (torchvision's resnet50().state_dict(), say), with or
          without 'module.'

The model (lenet, resnet<6n+2>, resnet50) is read from the keys (or Cohen's 'arch') unless
--model says. Every tensor's name and shape is checked against that model as layers/models.cpp
builds it; missing, unexpected or misshapen tensors are refused, naming them. The output holds
the tensors under this engine's names (PyTorch's) and the metadata macer_certify reads: format,
model, data set, input shape, classes, sigma (0 unless --sigma: then pass --sigma to
macer_certify), epoch, the input normalization when there is one, and `class_names` (a JSON
array of strings in label order) from --class-names FILE: one name per line, or a JSON array.
ImageNet models need it: the 1000 class folder names sorted as torchvision sorts them (its
WordNet ids n01440764 ...; `ls /data/imagenet/val > classes.txt` makes it). No Debian package
ships that list, so it is not built in; `--class-names none` converts without names (then
macer_certify cannot compare the folder's classes with the model's). Written to OUT.tmp, then
renamed.

Normalization, (x - mean[c]) / std[c] per channel after the noise, stored in the checkpoint:
  cifar10, imagenet             Cohen's data set statistics (datasets.py)
  cifar10-mean, imagenet-mean   the means only, std 1 (SmoothAdv's NormalizeLayer)
  half                          mean 0.5, std 0.5: models whose inputs are in [-1, 1]
  --normalize-mean/-std         any per-channel values (std 1 when only the means are given)

Needs PyTorch (Debian: python3-torch) and numpy to read .pth files; `--list MODEL` (the tensor
names and shapes this script expects, used by the tests) needs neither.
"""
import argparse
import json
import os
import pickle
import re
import struct
import sys
import types

FORMAT = "macer-engine-checkpoint-1"

# Cohen et al.'s datasets.py; the same numbers as layers::normalization_preset.
NORMALIZATIONS = {
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "cifar10-mean": ([0.4914, 0.4822, 0.4465], [1.0, 1.0, 1.0]),  # SmoothAdv's: the mean only
    "imagenet-mean": ([0.485, 0.456, 0.406], [1.0, 1.0, 1.0]),
    "half": (None, None),  # 0.5 per channel, any channel count: inputs mapped to [-1, 1]
}


def parse_channels(text, option):
    """'0.5,0.5,0.5' -> [0.5, 0.5, 0.5]; ConvertError naming the option otherwise."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise ConvertError("%s '%s' is not a comma-separated list of numbers, one per channel" % (option, text))
    return values

# Data sets: engine name, (channels, height, width), classes, Cohen-style normalization.
DATASETS = {
    "cifar10": ("cifar10", (3, 32, 32), 10, "cifar10"),
    "svhn": ("svhn", (3, 32, 32), 10, None),
    "mnist": ("mnist", (1, 28, 28), 10, None),
    "fashion-mnist": ("fashion-mnist", (1, 28, 28), 10, None),
    "imagenet": ("imagefolder", (3, 224, 224), 1000, "imagenet"),
}

COHEN_ARCHS = {"cifar_resnet20": ("resnet20", "cifar10"), "cifar_resnet110": ("resnet110", "cifar10"),
               "resnet50": ("resnet50", "imagenet")}


class ConvertError(Exception):
    pass


# ---- the models as layers/models.cpp builds them: ordered (name, shape) ---------------------
def _bn(prefix, c):
    return [(prefix + ".weight", (c,)), (prefix + ".bias", (c,))], \
           [(prefix + ".running_mean", (c,)), (prefix + ".running_var", (c,))]


def expected_state(model, channels, classes, height, width):
    """[(name, shape)]: parameters in registration order, then buffers, as layers/state.cpp."""
    params, buffers = [], []

    def conv(name, cin, cout, k, bias=False):
        params.append((name + ".weight", (cout, cin, k, k)))
        if bias:
            params.append((name + ".bias", (cout,)))

    def bn(name, c):
        p, b = _bn(name, c)
        params.extend(p)
        buffers.extend(b)

    def linear(name, cin, cout):
        params.extend([(name + ".weight", (cout, cin)), (name + ".bias", (cout,))])

    def block(prefix, cin, width, stride, bottleneck):
        out = width * 4 if bottleneck else width
        if bottleneck:
            conv(prefix + ".conv1", cin, width, 1)
            bn(prefix + ".bn1", width)
            conv(prefix + ".conv2", width, width, 3)
            bn(prefix + ".bn2", width)
            conv(prefix + ".conv3", width, out, 1)
            bn(prefix + ".bn3", out)
        else:
            conv(prefix + ".conv1", cin, width, 3)
            bn(prefix + ".bn1", width)
            conv(prefix + ".conv2", width, width, 3)
            bn(prefix + ".bn2", width)
        if stride != 1 or cin != out:
            conv(prefix + ".downsample.0", cin, out, 1)
            bn(prefix + ".downsample.1", out)
        return out

    m = re.fullmatch(r"resnet(\d+)", model)
    if model == "lenet":
        h, w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        conv("conv1", channels, 20, 5, bias=True)
        conv("conv2", 20, 50, 5, bias=True)
        linear("fc1", 50 * h * w, 500)
        linear("fc2", 500, classes)
    elif model == "resnet50":
        conv("conv1", channels, 64, 7)
        bn("bn1", 64)
        cin = 64
        for s, blocks in enumerate((3, 4, 6, 3)):
            for b in range(blocks):
                cin = block("layer%d.%d" % (s + 1, b), cin, 64 << s, 2 if b == 0 and s > 0 else 1, True)
        linear("fc", cin, classes)
    elif m and int(m.group(1)) >= 8 and (int(m.group(1)) - 2) % 6 == 0:
        n = (int(m.group(1)) - 2) // 6
        conv("conv1", channels, 16, 3)
        bn("bn1", 16)
        cin = 16
        for s in range(3):
            for b in range(n):
                cin = block("layer%d.%d" % (s + 1, b), cin, 16 << s, 2 if b == 0 and s > 0 else 1, False)
        linear("fc", 64, classes)
    else:
        raise ConvertError("unknown model '%s' (known: lenet, resnet<6n+2> such as resnet20 or resnet110, "
                           "resnet50)" % model)
    return params + buffers


# ---- reading the .pth ---------------------------------------------------------------------
class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors, storages, containers and numbers; refuses every other class, so no
    code from the file runs (PyTorch 1.13's weights_only mode refuses floats, which Cohen's
    optimizer state holds)."""

    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor"),
               ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
               ("torch", "Size"), ("torch", "device"), ("torch", "float32"), ("torch", "float64"),
               ("torch", "float16")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError("refusing to unpickle %s.%s (only tensors and plain containers are read)"
                                     % (module, name))


restricted_pickle = types.SimpleNamespace(
    __name__="restricted_pickle", Unpickler=_RestrictedUnpickler, UnpicklingError=pickle.UnpicklingError,
    load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load())


def load_pth(path):
    try:
        import torch
    except ImportError:
        raise ConvertError("PyTorch is needed to read %s (Debian: apt-get install python3-torch)" % path)
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    # PyTorch 1.13's load() replaces any pickle_module by its module-global `pickle` unless
    # weights_only is set: swap that global for the restricted one while loading.
    saved = torch.serialization.pickle
    torch.serialization.pickle = restricted_pickle
    try:
        return torch.load(path, map_location="cpu", pickle_module=restricted_pickle)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is the file's problem
        raise ConvertError("%s: cannot read it as a PyTorch checkpoint: %s" % (path, str(e).splitlines()[0]))
    finally:
        torch.serialization.pickle = saved


def is_state_dict(obj):
    import torch
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def detect_format(obj, path):
    if isinstance(obj, dict) and "net" in obj and is_state_dict(obj["net"]):
        return "macer"
    if isinstance(obj, dict) and "state_dict" in obj and is_state_dict(obj["state_dict"]):
        return "cohen"
    if is_state_dict(obj):
        return "plain"
    keys = sorted(map(str, obj.keys()))[:12] if isinstance(obj, dict) else []
    raise ConvertError("%s: unknown layout: not MACER's {'net': state_dict, 'epoch': N}, nor Cohen's "
                       "{'arch': ..., 'state_dict': ...}, nor a plain state_dict (%s)" %
                       (path, "top-level keys: " + ", ".join(keys) if isinstance(obj, dict)
                        else "a " + type(obj).__name__))


def strip_prefix(sd, prefix):
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}, True
    return sd, False


def state_of(obj, fmt, path):
    """The model's state_dict with the format's prefixes removed, and notes on what was done."""
    notes = []
    if fmt == "macer":
        sd = obj["net"]
    elif fmt == "cohen":
        sd = obj["state_dict"]
        # Sequential(NormalizeLayer, net): index 0 has no tensors, everything sits under "1.".
        outside = sorted(k for k in sd if not k.startswith("1."))
        if outside:
            raise ConvertError("%s: Cohen's layout keeps every tensor under '1.' (the network after its "
                               "NormalizeLayer); unexpected keys: %s" % (path, ", ".join(outside[:12])))
        sd, _ = strip_prefix(sd, "1.")
        notes.append("stripped '1.' (Cohen's Sequential(NormalizeLayer, net))")
    else:
        sd = obj
    sd, stripped = strip_prefix(sd, "module.")
    if stripped:
        notes.append("stripped 'module.' (DataParallel)")
    return {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, notes


def infer_model(sd):
    """lenet, resnet50 or the Cifar resnet<6n+2>, from the names of the state."""
    if "fc1.weight" in sd and "fc2.weight" in sd and "conv2.weight" in sd:
        return "lenet"
    if any(k.startswith("layer4.") for k in sd) and any(k.endswith("conv3.weight") for k in sd):
        return "resnet50"
    blocks = {int(m.group(1)) for k in sd for m in [re.match(r"layer1\.(\d+)\.", k)] if m}
    if blocks and all(any(k.startswith("layer%d." % s) for k in sd) for s in (1, 2, 3)):
        return "resnet%d" % (6 * (max(blocks) + 1) + 2)
    return None


def check_state(sd, expected, path, model):
    """Every expected name present with its shape, nothing else: else one error naming them."""
    names = [n for n, _ in expected]
    missing = [n for n in names if n not in sd]
    unexpected = sorted(k for k in sd if k not in set(names))
    wrong = ["%s %s (model: %s)" % (n, tuple(sd[n].shape), shape) for n, shape in expected
             if n in sd and tuple(sd[n].shape) != tuple(shape)]
    problems = []
    if unexpected:
        problems.append("%d unexpected keys: %s" % (len(unexpected), ", ".join(unexpected[:12]) +
                                                    (", ..." if len(unexpected) > 12 else "")))
    if missing:
        problems.append("%d missing: %s" % (len(missing), ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")))
    if wrong:
        problems.append("%d of the wrong shape: %s" % (len(wrong), "; ".join(wrong[:6])))
    if problems:
        raise ConvertError("%s: does not match %s: %s" % (path, model, "; ".join(problems)))


# ---- writing the safetensors --------------------------------------------------------------
def save_safetensors(path, tensors, metadata):
    """tensors: [(name, float32 numpy array)]; 8-byte LE header length, JSON header, raw data."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, a in tensors:
        raw = a.astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in blobs:
                f.write(raw)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ConvertError("cannot write %s: %s" % (path, e.strerror or e))


def read_class_names(path, classes, dataset):
    """The --class-names list: [] for 'none', else `classes` distinct non-empty names."""
    if path is None:
        if dataset == "imagenet":
            raise ConvertError("ImageNet models need --class-names FILE: the %d class folder names in label "
                               "order (torchvision's sorted WordNet ids: `ls /data/imagenet/val > classes.txt`); "
                               "no Debian package ships that list. --class-names none converts without them"
                               % classes)
        return []
    if path == "none":
        return []
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConvertError("--class-names %s: cannot read it (%s)" % (path, e.strerror))
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except ValueError as e:
            raise ConvertError("--class-names %s: not a JSON array of strings (%s)" % (path, e))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConvertError("--class-names %s: not a JSON array of strings" % path)
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != classes:
        raise ConvertError("--class-names %s: %d class names, but the model has %d classes" %
                           (path, len(names), classes))
    if "" in names or len(set(names)) != len(names):
        raise ConvertError("--class-names %s: names must be distinct and non-empty" % path)
    return names


def float_list(values):
    return ",".join("%.9g" % v for v in values)


def convert(args):
    obj = load_pth(args.input)
    fmt = detect_format(obj, args.input)
    if args.format != "auto" and args.format != fmt:
        raise ConvertError("%s: looks like the %s layout, not %s" % (args.input, fmt, args.format))
    sd, notes = state_of(obj, fmt, args.input)

    model, dataset = args.model, args.dataset
    if fmt == "cohen":
        arch = obj.get("arch")
        if arch not in COHEN_ARCHS and not model:
            raise ConvertError("%s: Cohen arch %r is not one of %s; pass --model" %
                               (args.input, arch, ", ".join(COHEN_ARCHS)))
        if arch in COHEN_ARCHS:
            model = model or COHEN_ARCHS[arch][0]
            dataset = dataset or COHEN_ARCHS[arch][1]
    model = model or infer_model(sd)
    if not model:
        raise ConvertError("%s: cannot tell the model from its keys (%s); pass --model" %
                           (args.input, ", ".join(sorted(sd)[:12])))
    if not dataset:
        dataset = {"lenet": "mnist", "resnet50": "imagenet"}.get(model, "cifar10")
        notes.append("data set %s assumed (pass --dataset to change it)" % dataset)
    if dataset not in DATASETS:
        raise ConvertError("unknown --dataset '%s' (known: %s)" % (dataset, ", ".join(DATASETS)))
    engine_dataset, (channels, height, width), classes, cohen_norm = DATASETS[dataset]

    # Normalization: Cohen's models carry it as their first layer; MACER's have none;
    # torchvision's ImageNet models expect ImageNet's.
    norm = args.normalize
    if args.normalize_std and not args.normalize_mean:
        raise ConvertError("--normalize-std needs --normalize-mean")
    if args.normalize_mean:
        if norm != "auto":
            raise ConvertError("give --normalize or --normalize-mean/--normalize-std, not both")
        norm = "custom"
    elif norm == "auto":
        if fmt == "cohen":
            if cohen_norm is None:
                raise ConvertError("Cohen's code normalizes only cifar10 and imagenet; for --dataset %s pass "
                                   "--normalize" % dataset)
            norm = cohen_norm
            # The layout holds no normalization tensors: what is assumed is said, with the way out.
            print("note: %s: Cohen's layout stores no normalization; assuming Cohen's %s mean and std, "
                  "(x - mean) / std. A model whose first layer subtracts the mean only (SmoothAdv's) needs "
                  "--normalize %s-mean; other values --normalize-mean/--normalize-std" % (args.input, norm, norm),
                  file=sys.stderr)
        elif fmt == "plain" and model == "resnet50" and dataset == "imagenet":
            norm = "imagenet"
        else:
            norm = "none"

    for key in ("fc.bias", "fc2.bias"):  # the classes: from the last layer's bias
        if key in sd and sd[key].dim() == 1:
            classes = int(sd[key].shape[0])
    expected = expected_state(model, channels, classes, height, width)
    check_state(sd, expected, args.input, model)
    class_names = read_class_names(args.class_names, classes, dataset)

    import numpy as np
    import torch
    tensors = []
    for name, _ in expected:
        t = sd[name]
        if not t.is_floating_point():
            raise ConvertError("%s: tensor %s is %s, not floating point" % (args.input, name, t.dtype))
        tensors.append((name, t.detach().to(torch.float32).contiguous().numpy().astype(np.float32)))

    epoch = obj.get("epoch", 0) if isinstance(obj, dict) and fmt != "plain" else 0
    metadata = {
        "format": FORMAT, "model": model, "dataset": engine_dataset,
        "channels": str(channels), "height": str(height), "width": str(width), "classes": str(classes),
        "sigma": repr(float(args.sigma)), "epoch": str(int(epoch) if isinstance(epoch, int) else 0),
        "step": "0", "config": "",
        "source": "scripts/convert_checkpoint.py %s (%s layout)" % (os.path.basename(args.input), fmt),
    }
    if norm != "none":
        if norm == "custom":
            mean = parse_channels(args.normalize_mean, "--normalize-mean")
            std = parse_channels(args.normalize_std, "--normalize-std") if args.normalize_std else [1.0] * len(mean)
            if len(std) != len(mean):
                raise ConvertError("--normalize-mean has %d values, --normalize-std %d" % (len(mean), len(std)))
            if any(s <= 0 for s in std):
                raise ConvertError("--normalize-std must be > 0 for every channel")
        elif norm == "half":
            mean, std = [0.5] * channels, [0.5] * channels
        else:
            mean, std = NORMALIZATIONS[norm]
        if len(mean) != channels:
            raise ConvertError("%s normalization has %d channels, %s images have %d" %
                               (norm, len(mean), dataset, channels))
        metadata["normalize"] = norm
        metadata["normalize_mean"] = float_list(mean)
        metadata["normalize_std"] = float_list(std)
    if class_names:
        metadata["class_names"] = json.dumps(class_names)
        notes.append("class names %s ... %s" % (class_names[0], class_names[-1]))
    else:
        notes.append("no class names recorded")
    save_safetensors(args.output, tensors, metadata)
    print("%s -> %s: %s layout, %s, %d tensors, data set %s (%dx%dx%d, %d classes), normalization %s%s" %
          (args.input, args.output, fmt, model, len(tensors), engine_dataset, channels, height, width,
           classes, norm, "".join("; " + n for n in notes)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("input", nargs="?", help="the PyTorch checkpoint (.pth, .pth.tar)")
    p.add_argument("output", nargs="?", help="the safetensors checkpoint to write")
    p.add_argument("--format", default="auto", choices=["auto", "macer", "cohen", "plain"])
    p.add_argument("--model", help="lenet, resnet<6n+2> (resnet20, resnet110, ...), resnet50 (default: from the keys)")
    p.add_argument("--dataset", help="cifar10, svhn, mnist, fashion-mnist, imagenet (default: from the model)")
    p.add_argument("--normalize", default="auto", choices=["auto", "none"] + list(NORMALIZATIONS),
                   help="input normalization (auto: Cohen's data set statistics for Cohen's layout, imagenet "
                        "for a plain ResNet-50 on imagenet, none otherwise; NAME-mean: the means only)")
    p.add_argument("--normalize-mean", metavar="M,M,M", help="custom per-channel means (std 1 unless --normalize-std)")
    p.add_argument("--normalize-std", metavar="S,S,S", help="custom per-channel standard deviations")
    p.add_argument("--sigma", type=float, default=0.0, help="noise level the model was trained for (recorded)")
    p.add_argument("--class-names", metavar="FILE|none",
                   help="the class names in label order (one per line, or a JSON array); needed for imagenet")
    p.add_argument("--list", metavar="MODEL", help="print the tensor names and shapes expected for MODEL and exit")
    p.add_argument("--list-input", default="3,32,32,10", help="with --list: channels,height,width,classes")
    args = p.parse_args()
    try:
        if args.list:
            c, h, w, k = (int(v) for v in args.list_input.split(","))
            for name, shape in expected_state(args.list, c, k, h, w):
                print(name, ",".join(str(d) for d in shape))
            return 0
        if not args.input or not args.output:
            p.error("IN.pth and OUT.safetensors are required")
        if args.sigma < 0:
            raise ConvertError("--sigma must be >= 0")
        convert(args)
    except ConvertError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
