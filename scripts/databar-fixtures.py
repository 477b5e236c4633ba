#!/usr/bin/env python3
"""GS1 DataBar photos drawn by another encoder than ours: zxing-cpp's writer (PyPI).

    databar-fixtures.py OUT_DIR [--seed N]

vrs's generator draws no DataBar, and a symbol drawn by the reader's own idea of the
format would test nothing: these come from zxing-cpp (its writer is zint's). Each
symbol (Omnidirectional, Stacked, Stacked Omnidirectional, Expanded; GTINs and lots
made up, check digits right) is put on a white label on a grey desk, turned a few
degrees, at a few scales, blurred, noised and saved as JPEG, as a phone would see a
vial's label. OUT_DIR/truth.json lists each file's symbol and the text vrs must
report. Run it with the yardstick's venv (scripts/bench-scan makes it):
    target/yardstick-venv/bin/python scripts/databar-fixtures.py fixtures/scan/databar
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

F = zxingcpp.BarcodeFormat
# (name, zxing-cpp format, what vrs reports it as, with element strings beyond the GTIN)
KINDS = [
    ("omni", F.DataBarOmni, "gs1-databar", False),
    ("stacked", F.DataBarStk, "gs1-databar", False),
    ("stacked-omni", F.DataBarStkOmni, "gs1-databar", False),
    ("expanded", F.DataBarExp, "gs1-databar-expanded", True),
]


def gtin(rng):
    body = "0" + "".join(rng.choice("0123456789") for _ in range(12))
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def photo(symbol, rng, scale, angle):
    sym = Image.fromarray(np.asarray(symbol)).convert("L")
    sym = sym.resize((sym.width * scale, sym.height * scale), Image.NEAREST)
    pad = 12 * scale
    label = Image.new("L", (sym.width + 2 * pad, sym.height + 2 * pad), 250)
    label.paste(sym, (pad, pad))
    label = label.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=0)
    mask = Image.new("L", (sym.width + 2 * pad, sym.height + 2 * pad), 255).rotate(
        angle, resample=Image.BICUBIC, expand=True, fillcolor=0
    )
    w, h = 1280, 720
    desk = Image.new("L", (w, h), rng.randint(90, 150))
    x = rng.randint(0, max(0, w - label.width))
    y = rng.randint(0, max(0, h - label.height))
    desk.paste(label, (x, y), mask)
    img = desk.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.1)))
    a = np.asarray(img, dtype=np.float32)
    a = a * rng.uniform(0.75, 1.0) + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(2, 6), a.shape)
    rgb = np.clip(np.stack([a * 1.0, a * 0.97, a * 0.92], axis=-1), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    for name, fmt, reported, long in KINDS:
        for i, (scale, angle) in enumerate([(2, 0.0), (3, rng.uniform(-6, 6)), (4, rng.uniform(-4, 4))]):
            g = gtin(rng)
            if long:
                lot = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)) + str(rng.randint(1000, 9999))
                content = f"(01){g}(17){rng.randint(26, 30)}{rng.randint(1, 12):02d}31(10){lot}"
            else:
                content = f"(01){g}"
            symbol = zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(content, fmt), scale=1)
            file = f"{name}-{i}.jpg"
            photo(symbol, rng, scale, angle).save(out / file, quality=80)
            truth.append({"file": file, "symbol": name, "format": reported, "text": content})
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"{out}: {len(truth)} images and truth.json")


if __name__ == "__main__":
    main()
