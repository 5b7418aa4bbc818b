#!/usr/bin/python3
# Converts PyTorch checkpoints made elsewhere (MACER's and Cohen's releases, plain state_dicts,
# torchvision's ResNets) into this engine's safetensors checkpoints for bin/macer_certify, and
# this engine's checkpoints back into PyTorch state_dicts (--to-pth).
"""Convert a PyTorch checkpoint into a macer-engine checkpoint (safetensors), and back.

    scripts/convert_checkpoint.py IN.pth OUT.safetensors [--format auto|macer|cohen|plain]
        [--model NAME] [--dataset NAME] [--input-size N] [--sigma S] [--beta B]
        [--normalize auto|none|cifar10|imagenet|cifar10-mean|imagenet-mean|half]
        [--normalize-mean M,M,M [--normalize-std S,S,S]]
        [--class-names FILE|none] [--overwrite]
    scripts/convert_checkpoint.py --to-pth IN.safetensors OUT.pth [--overwrite]

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
  plain   a bare state_dict (torchvision's resnet18().state_dict(), say), with or
          without 'module.'

Models: lenet (MACER's MNIST LeNet), the Cifar ResNets resnet<6n+2> (resnet20, resnet110, ...;
cifar_resnet<6n+2>, Cohen's arch name, for the depths 50 and 152), and torchvision's resnet18,
resnet34 (BasicBlocks), resnet50, resnet101, resnet152 (Bottlenecks). The model is read from the
keys' structure (or Cohen's 'arch') unless --model says; a structure none of these has is refused
with the list. Every tensor's name and shape is checked against that model as layers/models.cpp
builds it; missing, unexpected or misshapen tensors are refused, naming them. The output holds
the tensors under this engine's names (PyTorch's) and the metadata macer_certify reads: format,
model, data set, input shape, classes, sigma (only when --sigma gives it, 0 included: without it
none is recorded and macer_certify asks for --sigma), beta (MACER's soft-certification beta, 16 for MACER's layout unless --beta),
epoch, the input normalization when there is one, and `class_names` (a JSON array of strings in
label order) from --class-names FILE: one name per line, or a JSON array. Image-folder models
(ImageNet) need it: the class folder names sorted as torchvision sorts them (its WordNet ids
n01440764 ...; `ls /data/imagenet/val > classes.txt` makes it). No Debian package ships that
list, so it is not built in; `--class-names none` converts without names (then macer_certify
cannot compare the folder's classes with the model's). Written to OUT.tmp, then renamed. An OUT
that exists is refused unless --overwrite is given (as macer_train and macer_certify refuse).

Data sets: cifar10, svhn (32x32), mnist, fashion-mnist (28x28), imagefolder (a folder of class
folders such as ImageNet's; "imagenet" is an alias, as in macer_train and macer_certify).
--input-size N (imagefolder only; default 224) is the side of the square crop the model sees,
recorded as the checkpoint's height and width: macer_certify resizes the folder's images to it.

Normalization, (x - mean[c]) / std[c] per channel after the noise, stored in the checkpoint:
  cifar10, imagenet             Cohen's data set statistics (datasets.py)
  cifar10-mean, imagenet-mean   the means only, std 1 (SmoothAdv's NormalizeLayer)
  half                          mean 0.5, std 0.5: models whose inputs are in [-1, 1]
  --normalize-mean/-std         any per-channel values (std 1 when only the means are given)

--to-pth turns one of this engine's checkpoints (converted or made by macer_train) back into a
PyTorch state_dict, torch.save'd: the model's tensors under the PyTorch model's own names (the
inverse of the mapping above: no 'module.' or Cohen's '1.'), each BatchNorm's
num_batches_tracked added as 0, the optimizer's momentum left out, so that
`model.load_state_dict(torch.load(OUT.pth), strict=True)` loads it into torchvision's resnetN()
or MACER's and Cohen's model classes. The file is read with json and struct (no safetensors
package). The input normalization, which the state_dict cannot hold, is printed.

Needs Debian's python3 (/usr/bin/python3, the first line) with PyTorch and numpy (python3-torch,
python3-numpy) to read or write .pth files; under another python3 (pyenv, conda, a venv) that lacks
them the error names /usr/bin/python3. `--list MODEL` (the tensor names and shapes this script
expects, used by the tests) needs neither.
"""
import argparse
import json
import os
import pickle
import sys
import types

from checkpoint_models import (FORMAT, SUPPORTED, ConvertError, check_state, expected_state, infer_model,
                               model_kind, pytorch_order, read_safetensors, save_safetensors, write_whole)
from python_needs import need

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

# Data sets: (channels, height, width), classes, Cohen-style normalization. The names are
# data::canonical_dataset's; "imagefolder" (alias "imagenet") takes --input-size.
DATASETS = {
    "cifar10": ((3, 32, 32), 10, "cifar10"),
    "svhn": ((3, 32, 32), 10, None),
    "mnist": ((1, 28, 28), 10, None),
    "fashion-mnist": ((1, 28, 28), 10, None),
    "imagefolder": ((3, 224, 224), 1000, "imagenet"),
}
DATASET_ALIASES = {"imagenet": "imagefolder"}

COHEN_ARCHS = {"cifar_resnet20": ("resnet20", "cifar10"), "cifar_resnet110": ("resnet110", "cifar10"),
               "resnet50": ("resnet50", "imagefolder")}

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
    missing = need(["torch", "numpy"], "to read %s" % path)
    if missing:
        raise ConvertError(missing)
    import torch
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    # PyTorch 1.13's load() replaces any pickle_module by its module-global `pickle` unless
    # weights_only is set: swap that global for the restricted one while loading.
    saved = torch.serialization.pickle
    torch.serialization.pickle = restricted_pickle
    try:
        return torch.load(path, map_location="cpu", pickle_module=restricted_pickle)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is the file's problem
        hint = ("; it is a safetensors file: to export one of ours to PyTorch use --to-pth IN OUT"
                if path.endswith(".safetensors") else "")
        raise ConvertError("%s: cannot read it as a PyTorch checkpoint: %s%s" % (path, str(e).splitlines()[0], hint))
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


def read_class_names(path, classes, dataset):
    """The --class-names list: [] for 'none', else `classes` distinct non-empty names."""
    if path is None:
        if dataset == "imagefolder":
            raise ConvertError("image-folder (ImageNet) models need --class-names FILE: the %d class folder names "
                               "in label order (torchvision's sorted folder names, ImageNet's WordNet ids: "
                               "`ls /data/imagenet/val > classes.txt`); no Debian package ships that list. "
                               "--class-names none converts without them" % classes)
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
    model = model or infer_model(sd, args.input)
    if not model:
        raise ConvertError("%s: cannot tell the model from its keys (%s); supported: %s. Pass --model if it is one "
                           "of these under other names" % (args.input, ", ".join(sorted(sd)[:12]), SUPPORTED))
    kind, _ = model_kind(model)
    if not dataset:
        dataset = "mnist" if kind == "lenet" else "imagefolder" if kind == "torchvision" else "cifar10"
        notes.append("data set %s assumed (pass --dataset to change it)" % dataset)
    dataset = DATASET_ALIASES.get(dataset, dataset)
    if dataset not in DATASETS:
        raise ConvertError("unknown --dataset '%s' (known: %s; imagenet is an alias of imagefolder)" %
                           (dataset, ", ".join(DATASETS)))
    (channels, height, width), classes, cohen_norm = DATASETS[dataset]
    if args.input_size is not None:
        if dataset != "imagefolder":
            raise ConvertError("--input-size is for image folders (--dataset imagefolder), which are resized to it; "
                               "%s images are %dx%d: leave --input-size out" % (dataset, height, width))
        height = width = args.input_size
    multiple = 32 if kind == "torchvision" else 4 if kind == "cifar" else 1
    if height % multiple:
        raise ConvertError("%s needs an input size divisible by %d, got %d: pass --input-size with a multiple of %d "
                           "(224 for ImageNet)" % (model, multiple, height, multiple))

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
        elif fmt == "plain" and kind == "torchvision" and dataset == "imagefolder":
            norm = "imagenet"  # torchvision's ImageNet models expect ImageNet's statistics
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
        "format": FORMAT, "model": model, "dataset": dataset,
        "channels": str(channels), "height": str(height), "width": str(width), "classes": str(classes),
        "epoch": str(int(epoch) if isinstance(epoch, int) else 0),
        "step": "0", "config": "",
        "source": "scripts/convert_checkpoint.py %s (%s layout)" % (os.path.basename(args.input), fmt),
    }
    # A sigma is recorded only when given (--sigma 0 records 0: trained without noise); without one
    # macer_certify asks for --sigma rather than reading a made-up 0.
    if args.sigma is not None:
        metadata["sigma"] = repr(float(args.sigma))
        notes.append("sigma %g" % args.sigma)
    else:
        notes.append("no sigma recorded (pass --sigma here or to macer_certify)")
    # MACER's soft certification bounds softmax(beta z) with the beta it trained with: main.py's
    # default 16; macer_certify reads it as the checkpoint's beta.
    beta = args.beta if args.beta is not None else 16.0 if fmt == "macer" else None
    if beta is not None:
        metadata["beta"] = repr(float(beta))
        notes.append("beta %g%s" % (beta, "" if args.beta is not None else " (MACER's default; --beta to change it)"))
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
          (args.input, args.output, fmt, model, len(tensors), dataset, channels, height, width,
           classes, norm, "".join("; " + n for n in notes)))


def to_pth(args):
    missing = need(["torch", "numpy"], "to write %s" % args.output)
    if missing:
        raise ConvertError(missing)
    meta, tensors = read_safetensors(args.input)
    if meta.get("format") != FORMAT:
        raise ConvertError("%s: not a checkpoint of this engine (metadata 'format' is %r); --to-pth exports what "
                           "macer_train and this script write" % (args.input, meta.get("format")))
    try:
        model = meta["model"]
        c, h, w, k = (int(meta[key]) for key in ("channels", "height", "width", "classes"))
    except (KeyError, ValueError) as e:
        raise ConvertError("%s: metadata lacks a model or input shape (%s)" % (args.input, e))
    classes_file = os.path.splitext(args.output)[0] + ".classes.txt"
    if "class_names" in meta and os.path.exists(classes_file) and not args.overwrite:
        raise ConvertError("%s exists (the class names go there); replace it with --overwrite" % classes_file)
    expected = expected_state(model, c, k, h, w)
    state = {n: t for n, t in tensors.items() if not n.startswith("momentum.")}  # the optimizer's: left out
    check_state(state, expected, args.input, model)
    import collections
    import torch
    out = collections.OrderedDict()
    for name, _ in pytorch_order(expected):
        out[name] = torch.from_numpy(state[name].astype("float32"))
        if name.endswith(".running_var"):  # BatchNorm2d's third buffer, which a strict load wants
            out[name[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    write_whole(args.output, lambda tmp: torch.save(out, tmp))
    kind, depth = model_kind(model)
    target = {"torchvision": "torchvision.models.resnet%s(num_classes=%d)" % (depth, k),
              "cifar": "MACER's and Cohen's Cifar ResNet (depth %s, num_classes=%d)" % (depth, k),
              "lenet": "MACER's LeNet (num_classes=%d)" % k}[kind]
    dropped = len(tensors) - len(state)
    print("%s -> %s: %s, %d tensors%s, a state_dict for %s: model.load_state_dict(torch.load('%s'), strict=True)" %
          (args.input, args.output, model, len(out), " (%d of the optimizer's momentum left out)" % dropped if dropped
           else "", target, args.output))
    if "normalize_mean" in meta:
        print("note: %s normalizes its input first, (x - mean) / std with mean %s and std %s, which a state_dict "
              "cannot hold: put Cohen's NormalizeLayer(mean, std) before the model in PyTorch" %
              (args.input, meta["normalize_mean"], meta.get("normalize_std", "1")), file=sys.stderr)
    if "class_names" in meta:  # the label order a PyTorch user needs too, one name per line
        write_text(classes_file, "".join(n + "\n" for n in json.loads(meta["class_names"])))
        print("%s: the %d class names in label order" % (classes_file, k))
    print("note: %s holds the weights only; the data set, sigma%s, normalization and class names %s recorded "
          "are not in it. To convert it back with them: scripts/convert_checkpoint.py %s BACK.safetensors %s" %
          (args.output, ", beta" if recorded_beta(meta) is not None else "", args.input, args.output,
           " ".join(back_flags(meta, model, h, classes_file))), file=sys.stderr)


def write_text(path, text):
    """Writes `text` to `path` whole or not at all (write_whole)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    write_whole(path, write)


def recorded_beta(meta):
    """The soft-certification beta the checkpoint records, as macer_certify resolves it: a
    macer_train checkpoint's stored config (objective.beta of a MACER run), else the 'beta' key
    (converted checkpoints); None when neither says."""
    if meta.get("config"):
        try:
            import tomllib  # Python 3.11
            objective = tomllib.loads(meta["config"]).get("objective", {})
        except (ImportError, ValueError):
            objective = {}
        if objective.get("name") == "macer" and "beta" in objective:
            return repr(float(objective["beta"]))
    return meta.get("beta")


def back_flags(meta, model, height, classes_file):
    """The flags that give a .pth exported by --to-pth the metadata of the checkpoint `meta` again
    (`classes_file`: where its class names were written, one per line)."""
    flags = ["--model", model]
    dataset = DATASET_ALIASES.get(meta.get("dataset", ""), meta.get("dataset", ""))
    if dataset in DATASETS:
        flags += ["--dataset", dataset]
        if dataset == "imagefolder":
            flags += ["--input-size", str(height)]
    if "sigma" in meta:  # recorded (0 included: trained without noise)
        flags += ["--sigma", meta["sigma"]]
    beta = recorded_beta(meta)
    if beta is not None:
        flags += ["--beta", beta]
    mean, std = meta.get("normalize_mean"), meta.get("normalize_std")
    if mean is None:
        flags += ["--normalize", "none"]
    else:
        values = ([float(v) for v in mean.split(",")], [float(v) for v in (std or "").split(",") if v])
        named = [n for n, (m, s) in NORMALIZATIONS.items()
                 if m is not None and all(abs(a - b) < 1e-6 for a, b in zip(m + s, values[0] + values[1]))
                 and len(m) == len(values[0]) and len(s) == len(values[1])]
        if all(v == 0.5 for v in values[0] + values[1]):
            named = ["half"]
        flags += ["--normalize", named[0]] if named else ["--normalize-mean", mean] + (["--normalize-std", std]
                                                                                      if std else [])
    if "class_names" in meta:
        flags += ["--class-names", classes_file]
    elif dataset == "imagefolder":
        flags += ["--class-names", "none"]
    return flags


class ArgumentParser(argparse.ArgumentParser):
    """argparse's refusals as one 'error: ...' line, as every other refusal here."""

    def error(self, message):
        print("error: %s (scripts/convert_checkpoint.py --help lists the options)" % message, file=sys.stderr)
        sys.exit(2)


def main():
    p = ArgumentParser(description=__doc__.split("\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("input", nargs="?", help="the PyTorch checkpoint (.pth, .pth.tar); with --to-pth the .safetensors")
    p.add_argument("output", nargs="?", help="the safetensors checkpoint to write; with --to-pth the .pth")
    p.add_argument("--to-pth", action="store_true",
                   help="the other way: this engine's checkpoint IN.safetensors to a PyTorch state_dict OUT.pth")
    p.add_argument("--format", default="auto", choices=["auto", "macer", "cohen", "plain"])
    p.add_argument("--model", help="lenet, resnet<6n+2> (resnet20, resnet110, ...), resnet18, resnet34, resnet50, "
                                   "resnet101, resnet152 (default: from the keys)")
    p.add_argument("--dataset", help="cifar10, svhn, mnist, fashion-mnist, imagefolder (alias imagenet) "
                                     "(default: from the model)")
    p.add_argument("--input-size", type=int, metavar="N",
                   help="imagefolder: the side of the square input the model sees (default 224), recorded")
    p.add_argument("--normalize", default="auto", choices=["auto", "none"] + list(NORMALIZATIONS),
                   help="input normalization (auto: Cohen's data set statistics for Cohen's layout, imagenet "
                        "for a plain torchvision ResNet on imagefolder, none otherwise; NAME-mean: the means only)")
    p.add_argument("--normalize-mean", metavar="M,M,M", help="custom per-channel means (std 1 unless --normalize-std)")
    p.add_argument("--normalize-std", metavar="S,S,S", help="custom per-channel standard deviations")
    p.add_argument("--sigma", type=float,
                   help="noise level the model was trained for (recorded; default: none recorded, and "
                        "macer_certify asks for --sigma)")
    p.add_argument("--beta", type=float,
                   help="MACER's soft-certification beta (recorded; default 16 for MACER's layout, else none)")
    p.add_argument("--class-names", metavar="FILE|none",
                   help="the class names in label order (one per line, or a JSON array); needed for imagefolder")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and OUT.classes.txt) when it exists")
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
            p.error("IN.pth and OUT.safetensors are required (with --to-pth: IN.safetensors OUT.pth)")
        if os.path.exists(args.output) and not args.overwrite:
            raise ConvertError("%s exists; replace it with --overwrite, or choose another output" % args.output)
        if args.to_pth:
            given = [o for o, v in (("--format", args.format != "auto"), ("--model", args.model),
                                    ("--dataset", args.dataset), ("--input-size", args.input_size is not None),
                                    ("--normalize", args.normalize != "auto"),
                                    ("--normalize-mean", args.normalize_mean),
                                    ("--sigma", args.sigma is not None), ("--beta", args.beta is not None),
                                    ("--class-names", args.class_names)) if v]
            if given:
                raise ConvertError("--to-pth takes only IN.safetensors OUT.pth: the checkpoint says the rest (%s given)"
                                   % ", ".join(given))
            to_pth(args)
            return 0
        if args.sigma is not None and not (args.sigma >= 0 and args.sigma != float("inf")):
            raise ConvertError("--sigma must be a finite number >= 0")
        if args.beta is not None and not (0 < args.beta < float("inf")):
            raise ConvertError("--beta must be a finite number > 0 (MACER trains with 16)")
        if args.input_size is not None and not 16 <= args.input_size <= 4096:
            raise ConvertError("--input-size %d is out of range: give the side of the model's square input, "
                               "16 to 4096 (224 for ImageNet)" % args.input_size)
        convert(args)
    except ConvertError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
