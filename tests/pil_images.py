# Test fixtures for tests/test_decode.cpp, made with PIL at test time: python3 pil_images.py DIR
# (or DIR --decode NAME...: PIL's RGB bytes of files already in DIR, as NAME.rgb; DIR --photos
# WxH...; DIR --eval-transform RESIZE CROP NAME...: torchvision's Resize + CenterCrop; DIR
# --resized-crop SIZE TOP LEFT H W NAME: torchvision's resized_crop).
# Writes images in every encoding image folders accept, and for each a line of DIR/manifest.txt:
# "ok NAME W H" with PIL's Image.open(NAME).convert('RGB') bytes in NAME.rgb, or "refuse NAME"
# for files PIL itself refuses (truncated, bad CRC) or whose PIL result we refuse by name.
import io, os, struct, sys, zlib

from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def photo(w, h, mode="RGB"):
    """A smooth image with edges and noise, so that codecs and resamplers have work to do."""
    im = Image.new("RGB", (w, h))
    px = im.load()
    seed = 12345
    for y in range(h):
        for x in range(w):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            n = (seed >> 16) % 41 - 20
            r = (x * 255 // max(w - 1, 1) + n) % 256
            g = (y * 255 // max(h - 1, 1) + (60 if (x // 7 + y // 5) % 2 else 0)) % 256
            b = ((x * y) % 256 + n) % 256
            px[x, y] = (r, g, b)
    return im.convert(mode) if mode != "RGB" else im


def ok(name):
    im = Image.open(os.path.join(out, name))
    rgb = im.convert("RGB")
    with open(os.path.join(out, name + ".rgb"), "wb") as f:
        f.write(rgb.tobytes())
    manifest.append("ok %s %d %d" % (name, rgb.width, rgb.height))


def refuse(name, pil_refuses):
    if pil_refuses:  # the test's premise: PIL refuses it too
        try:
            Image.open(os.path.join(out, name)).convert("RGB")
        except Exception:
            pass
        else:
            raise SystemExit("PIL decoded %s, which the fixture expects it to refuse" % name)
    manifest.append("refuse " + name)


def save(im, name, **kw):
    im.save(os.path.join(out, name), **kw)


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def read(name):
    with open(os.path.join(out, name), "rb") as f:
        return f.read()


def strip_app14(data):
    """The JPEG without its Adobe (APP14) segments."""
    res, i = bytearray(data[:2]), 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        if data[i + 1] != 0xEE:
            res += data[i:i + 2 + n]
        i += 2 + n
    return bytes(res + data[i:])


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png16(w, h, color_type, channels):
    raw = b""
    for y in range(h):
        raw += b"\0" + b"".join(struct.pack(">H", (x * 4099 + y * 977 + c * 20011) % 65536)
                                for x in range(w) for c in range(channels))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) +
            png_chunk(b"IEND", b""))


if sys.argv[2:3] == ["--decode"]:  # files made elsewhere (a YCCK JPEG, which PIL cannot write)
    for name in sys.argv[3:]:
        with open(os.path.join(out, name + ".rgb"), "wb") as f:
            f.write(Image.open(os.path.join(out, name)).convert("RGB").tobytes())
    sys.exit(0)
if sys.argv[2:3] == ["--eval-transform"]:  # DIR --eval-transform RESIZE CROP NAME...: torchvision's
    from torchvision import transforms      # evaluation transform of each file, as NAME.eval.rgb
    t = transforms.Compose([transforms.Resize(int(sys.argv[3])), transforms.CenterCrop(int(sys.argv[4]))])
    for name in sys.argv[5:]:
        with open(os.path.join(out, name + ".eval.rgb"), "wb") as f:
            f.write(t(Image.open(os.path.join(out, name)).convert("RGB")).tobytes())
    sys.exit(0)
if sys.argv[2:3] == ["--resized-crop"]:  # DIR --resized-crop SIZE TOP LEFT H W NAME: torchvision's
    from torchvision.transforms import functional as F  # resized_crop (RandomResizedCrop's pixels)
    size, top, left, h, w = map(int, sys.argv[3:8])
    im = Image.open(os.path.join(out, sys.argv[8])).convert("RGB")
    with open(os.path.join(out, sys.argv[8] + ".rrc.rgb"), "wb") as f:
        f.write(F.resized_crop(im, top, left, h, w, [size, size]).tobytes())
    sys.exit(0)
if sys.argv[2:3] == ["--photos"]:  # DIR --photos WxH...: photo-like PNGs named WxH.png
    for size in sys.argv[3:]:
        w, h = map(int, size.split("x"))
        photo(w, h).save(os.path.join(out, size + ".png"))
    sys.exit(0)
manifest = []

rgb = photo(61, 47)
# JPEG: baseline 4:2:0 (PIL's default), 4:4:4, progressive, grey, CMYK with and without Adobe marker.
save(rgb, "baseline.jpg", quality=90); ok("baseline.jpg")
save(rgb, "q75_444.jpeg", quality=75, subsampling=0); ok("q75_444.jpeg")
save(rgb, "progressive.jpg", quality=90, progressive=True); ok("progressive.jpg")
save(rgb, "optimized_422.JPG", quality=85, optimize=True, subsampling=1); ok("optimized_422.JPG")
save(rgb.convert("L"), "grey.jpg", quality=90); ok("grey.jpg")
save(rgb.convert("CMYK"), "cmyk_adobe.jpg", quality=90); ok("cmyk_adobe.jpg")
write("cmyk_plain.jpg", strip_app14(read("cmyk_adobe.jpg")))
assert read("cmyk_plain.jpg") != read("cmyk_adobe.jpg"), "no Adobe marker found to strip"
ok("cmyk_plain.jpg")
data = read("baseline.jpg")
write("truncated.jpg", data[: len(data) // 2]); refuse("truncated.jpg", True)
data = read("progressive.jpg")
write("truncated_progressive.jpg", data[: len(data) * 2 // 3]); refuse("truncated_progressive.jpg", True)
# PNG: RGB, RGBA, palette with transparency, grey, grey + alpha, 1-bit, 16-bit RGB(A).
save(rgb, "rgb.png"); ok("rgb.png")
rgba = rgb.copy(); rgba.putalpha(photo(61, 47, "L")); save(rgba, "rgba.png"); ok("rgba.png")
pal = rgb.quantize(37); pal.info["transparency"] = 3; save(pal, "palette.png", transparency=3); ok("palette.png")
save(rgb.convert("L"), "grey.png"); ok("grey.png")
save(rgb.convert("LA"), "grey_alpha.png"); ok("grey_alpha.png")
save(rgb.convert("1"), "bilevel.png"); ok("bilevel.png")
write("rgb16.png", png16(13, 9, 2, 3)); ok("rgb16.png")
write("rgba16.png", png16(13, 9, 6, 4)); ok("rgba16.png")
write("grey16.png", png16(13, 9, 0, 1)); refuse("grey16.png", False)  # PIL saturates: refused by name
data = bytearray(read("rgb.png"))
idat = data.find(b"IDAT")
data[idat + 4 + 10] ^= 0x01  # one bit of the compressed data: the chunk's CRC no longer matches
write("bad_crc.png", bytes(data)); refuse("bad_crc.png", True)
data = read("rgb.png")
text = png_chunk(b"tEXt", b"Comment\0made by pil_images.py")
text = text[:-1] + bytes([text[-1] ^ 0xFF])  # intact text, wrong CRC: PIL says "broken PNG file"
write("bad_text_crc.png", data[:33] + text + data[33:]); refuse("bad_text_crc.png", True)
data = read("rgb.png")
write("truncated.png", data[: len(data) // 2]); refuse("truncated.png", True)
# WebP: lossy, lossless with alpha.
save(rgb, "lossy.webp", quality=90); ok("lossy.webp")
save(rgba, "lossless_alpha.WEBP", lossless=True); ok("lossless_alpha.WEBP")
# TIFF: raw RGB, LZW RGB, deflate grey, palette.
save(rgb, "raw.tif"); ok("raw.tif")
save(rgb, "lzw.tiff", compression="tiff_lzw"); ok("lzw.tiff")
save(rgb.convert("L"), "grey_deflate.tif", compression="tiff_adobe_deflate"); ok("grey_deflate.tif")
save(rgb.quantize(20), "palette.tif"); ok("palette.tif")
# BMP, PPM, PGM.
save(rgb, "rgb.bmp"); ok("rgb.bmp")
save(rgb, "rgb.ppm"); ok("rgb.ppm")
save(rgb.convert("L"), "grey.pgm"); ok("grey.pgm")

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
