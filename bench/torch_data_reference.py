# torchvision's input pipeline on the corpus of bench/cases_data.cpp, for the data.imagenet_*
# cases: python3 bench/torch_data_reference.py [CORPUS] (default: the bench's, in the temp folder;
# run macer_bench --filter data. first). ImageFolder + DataLoader (PIL, workers = cores, batch 32),
# one warm-up epoch then the median of REPEATS epochs, in images/s.
import os
import statistics
import sys
import tempfile
import time

import torch
import torchvision
from torchvision import datasets, transforms

corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "macer_bench_imagenet_corpus")
repeats = int(os.environ.get("REPEATS", "5"))
workers = os.cpu_count()
cases = {
    "data.imagenet_train": transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                                               transforms.ToTensor()]),
    "data.imagenet_eval": transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                                              transforms.ToTensor()]),
}
for name, t in cases.items():
    ds = datasets.ImageFolder(os.path.join(corpus, "train"), transform=t)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=name.endswith("train"), num_workers=workers,
                                         persistent_workers=True)
    times = []
    for epoch in range(repeats + 1):
        start = time.perf_counter()
        for _ in loader:
            pass
        if epoch > 0:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print("%-22s torchvision %s, %d workers: %.1f images/s (median of %d epochs of %d images)" %
          (name, torchvision.__version__, workers, len(ds) / median, repeats, len(ds)))
