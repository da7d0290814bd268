"""ImageRecordIter throughput at 224x224 JPEG, and whether it keeps up with a ResNet-18 step.

    python bench/image_io.py [--images 96] [--threads 1 2] [--train-batch 8] [--train-steps 2]
                             [--ctx cpu|gpu] [--no-train]

1. Packs `--images` synthetic photos (256 x 320..384, JPEG quality 90, as
   im2rec --resize 256 makes ImageNet) into a temporary .rec/.idx.
2. Baseline, same run: bare `cv2.imdecode` of the same JPEGs on one thread.
3. ImageRecordIter with ImageNet training augmentation (data_shape 3x224x224,
   rand_crop, rand_mirror, mean/std) at each `--threads` count: images/s,
   images/s per thread, and the ratio to the bare decode.
4. One ResNet-18 (raymod.models, 1000 classes) forward + backward on
   `--ctx` with batch `--train-batch`: images/s trained. Decoding keeps up
   when the iterator's images/s on the cores left over is at least that.

Timings on a shared 2-core machine swing with the other processes; the
ratios against the baseline (measured in the same run) are the figures
to compare.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod.image.codec import cv2  # noqa: E402
from raymod.models import resnet  # noqa: E402


def synthetic_photo(rng, height=256, width=320):
    """Smooth colour fields plus texture: JPEG-compresses like a photo, not like noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6)]
        img[..., c] = 128 + 80 * np.sin(x * fx + y * fy + phase)
    img += rng.normal(0, 12, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_rec(directory, count, seed=0):
    rng = np.random.default_rng(seed)
    rec_path, idx_path = os.path.join(directory, "bench.rec"), os.path.join(directory, "bench.idx")
    jpegs = []
    with rm.recordio.MXIndexedRecordIO(idx_path, rec_path, "w") as rec:
        for i in range(count):
            img = synthetic_photo(rng, width=int(rng.integers(320, 385)))
            packed = rm.recordio.pack_img(rm.recordio.IRHeader(0, float(i % 1000), i, 0), img,
                                          quality=90)
            rec.write_idx(i, packed)
            jpegs.append(rm.recordio.unpack(packed)[1])
    return rec_path, idx_path, jpegs


def bare_decode_rate(jpegs, repeats=2):
    cv = cv2()
    bufs = [np.frombuffer(j, np.uint8) for j in jpegs]
    start = time.perf_counter()
    for _ in range(repeats):
        for b in bufs:
            cv.imdecode(b, cv.IMREAD_COLOR)
    return repeats * len(bufs) / (time.perf_counter() - start)


def iterator_rate(rec_path, idx_path, threads, batch, epochs=2):
    it = rm.io.ImageRecordIter(path_imgrec=rec_path, path_imgidx=idx_path,
                               data_shape=(3, 224, 224), batch_size=batch, shuffle=True,
                               rand_crop=True, rand_mirror=True, mean_r=123.68, mean_g=116.28,
                               mean_b=103.53, std_r=58.395, std_g=57.12, std_b=57.375,
                               preprocess_threads=threads)
    for _ in it:             # warm up: thread pool, page cache
        pass
    it.reset()
    images = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for b in it:
            images += b.data[0].shape[0] - b.pad
        it.reset()
    seconds = time.perf_counter() - start
    it.close()
    return images / seconds


def resnet18_rate(ctx, batch, steps):
    sym = resnet(num_classes=1000, num_layers=18, image_shape=(3, 224, 224))
    grad_req = {n: "null" if n in ("data", "softmax_label") else "write"
                for n in sym.list_arguments()}
    exe = sym.simple_bind(ctx, grad_req=grad_req, data=(batch, 3, 224, 224),
                          softmax_label=(batch,))
    rng = np.random.default_rng(0)
    xp = ctx.xp
    for name, arr in exe.arg_dict.items():
        if name == "softmax_label":
            arr[...] = xp.asarray(rng.integers(0, 1000, arr.shape).astype(arr.dtype))
        elif name == "data" or arr.ndim > 1:
            fan_in = int(np.prod(arr.shape[1:])) or 1
            arr[...] = xp.asarray(rng.normal(0, np.sqrt(2.0 / fan_in), arr.shape)
                                  .astype(arr.dtype))
        else:
            arr[...] = xp.asarray(np.ones(arr.shape, arr.dtype) if name.endswith("gamma")
                                  else np.zeros(arr.shape, arr.dtype))

    def step():
        exe.forward(is_train=True)
        exe.backward()
        if ctx.device_type == "gpu":
            xp.cuda.Stream.null.synchronize()

    step()                   # warm up (workspace allocation, cupy kernels)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, default=32, help="iterator batch size")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-steps", type=int, default=2)
    p.add_argument("--ctx", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--no-train", action="store_true")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} cores; OpenCV {cv2().__version__}, "
          f"its own threads: {cv2().getNumThreads()}")
    with tempfile.TemporaryDirectory() as tmp:
        rec_path, idx_path, jpegs = write_rec(tmp, args.images)
        mb = os.path.getsize(rec_path) / 2 ** 20
        print(f"{args.images} JPEGs (256 x 320..384, q90), {mb:.1f} MiB")
        base = bare_decode_rate(jpegs)
        print(f"baseline  bare cv2.imdecode, 1 thread: {base:8.1f} images/s")
        rates = {}
        for threads in args.threads:
            rate = iterator_rate(rec_path, idx_path, threads, args.batch)
            rates[threads] = rate
            print(f"ImageRecordIter, {threads} thread(s): {rate:8.1f} images/s = "
                  f"{rate / threads:7.1f} per thread = {rate / threads / base:.2f} x bare decode "
                  "per thread (decode + crop + mirror + normalise + batch)")
    if args.no_train:
        return rates
    ctx = rm.gpu(0) if args.ctx == "gpu" else rm.cpu(0)
    train, step_s = resnet18_rate(ctx, args.train_batch, args.train_steps)
    print(f"ResNet-18 forward+backward on {args.ctx}, batch {args.train_batch}: "
          f"{step_s:.2f} s/step = {train:.1f} images/s")
    per_core = rates[min(rates)] / min(rates)
    print(f"cores of decoding needed to feed it: {train / per_core:.2f} "
          f"(one decode thread: {per_core:.1f} images/s) -> "
          f"{'keeps up' if per_core >= train else 'does not keep up'} with one core")
    return rates


if __name__ == "__main__":
    main()
