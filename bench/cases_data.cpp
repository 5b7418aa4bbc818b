// Image-folder input bench cases: the ImageNet training transform (decode + RandomResizedCrop 224
// + flip + to float) and the evaluation transform (decode + Resize 256 + CenterCrop 224) through
// the loader's decoding threads, in images/s; bench/torch_data_reference.py times torchvision's.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <jpeglib.h>

#include "bench/harness.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/loader.h"
#include "data/resize.h"
#include "kernels/check.h"

namespace macer::bench {

namespace {

namespace fs = std::filesystem;

// A real photograph shipped by Debian (python-matplotlib-data): 512 x 600.
const char* kPhoto = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
constexpr int kImages = 96;

void write_jpeg(const std::string& path, const data::RgbImage& img, int quality) {
  FILE* f = std::fopen(path.c_str(), "wb");
  MACER_CHECK(f != nullptr, path << ": cannot write");
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = JDIMENSION(img.width), c.image_height = JDIMENSION(img.height);
  c.input_components = 3, c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);  // 4:2:0, as PIL saves by default
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.pixels.data() + size_t(c.next_scanline) * img.width * 3);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// ImageNet-like corpus, made once per process: kImages crops of 500 x 375 (ImageNet's typical
// size) at varied offsets, every other one mirrored, re-encoded at quality 90, in 4 classes.
const std::string& corpus() {
  static const std::string dir = [] {
    const std::string d = (fs::temp_directory_path() / "macer_bench_imagenet_corpus").string();
    MACER_CHECK(fs::exists(kPhoto), kPhoto << " not found: install Debian's python-matplotlib-data for the data cases");
    const data::RgbImage photo = data::decode_image_file(kPhoto);
    for (int k = 0; k < kImages; ++k) {
      data::CropBox b;
      b.width = 500, b.height = 375, b.left = (k * 5) % (photo.width - 500 + 1);
      b.top = (k * 37) % (photo.height - 375 + 1);
      data::RgbImage img = data::crop(photo, b);
      if (k % 2)
        for (int y = 0; y < img.height; ++y)
          for (int x = 0; x < img.width / 2; ++x)
            for (int c = 0; c < 3; ++c)
              std::swap(img.pixels[(size_t(y) * img.width + x) * 3 + c],
                        img.pixels[(size_t(y) * img.width + (img.width - 1 - x)) * 3 + c]);
      fs::create_directories(d + "/train/c" + std::to_string(k % 4));
      write_jpeg(d + "/train/c" + std::to_string(k % 4) + "/" + std::to_string(k) + ".jpg", img, 90);
    }
    return d;
  }();
  return dir;
}

Result loader_epoch(const std::string& name, bool train, const Options& o) {
  data::DatasetOptions dopt;
  dopt.image_size = 224;
  auto set = data::open_dataset("imagefolder", corpus(), "train", dopt);
  data::LoaderOptions lo;
  lo.batch = o.batch > 0 ? o.batch : 32;
  lo.shuffle = train;
  lo.random_resized_crop = lo.augment_flip = train;
  lo.workers = int(std::max(1u, std::thread::hardware_concurrency()));  // as many threads as cores
  lo.prefetch = 2;
  data::Loader loader(*set, lo);
  int epoch = 0;
  Result r = time_it(name, o, [&] {
    loader.begin_epoch(epoch++);
    data::Batch b;
    while (loader.next(b)) {
    }
  });
  r.items = double(set->size());
  r.item_unit = "images";
  r.note = std::to_string(lo.workers) + " decoding threads, " + std::to_string(kImages) +
           " JPEGs 500x375 q90 (crops of " + fs::path(kPhoto).filename().string() + ")";
  return r;
}

Register data_train("data.imagenet_train",
                    "ImageNet training input: JPEG decode + RandomResizedCrop 224 + flip + to float, loader threads",
                    [](const Options& o) { return loader_epoch("data.imagenet_train", true, o); });
Register data_eval("data.imagenet_eval",
                   "ImageNet evaluation input: JPEG decode + Resize 256 + CenterCrop 224 + to float, loader threads",
                   [](const Options& o) { return loader_epoch("data.imagenet_eval", false, o); });

}  // namespace
}  // namespace macer::bench
