"""Make an image list (.lst) from a folder, or pack a list's images into RecordIO (.rec + .idx).

MXNet's tools/im2rec.py command line, for its common path::

    python -m raymod.tools.im2rec --list --recursive --train-ratio 0.9 data/pets images/
    python -m raymod.tools.im2rec --resize 256 --quality 90 --num-thread 4 data/pets images/

With --list, every image under ROOT becomes a line ``index<TAB>label<TAB>path``
of PREFIX.lst (or PREFIX_train.lst / PREFIX_val.lst / PREFIX_test.lst with
--train-ratio / --test-ratio); with --recursive each sub-folder is a class,
numbered in sorted order. Without --list, every PREFIX*.lst next to PREFIX is
packed into a .rec and .idx of the same name. The lists are MXNet's byte
for byte (the same shuffle), and MXNet reads the .rec files (it is MXNet's
format); images are read, resized and encoded with OpenCV, as MXNet does.
An image that cannot be read is reported and skipped, as in MXNet.
"""
import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from .. import fileio
from ..image.codec import cv2
from ..recordio import IRHeader, MXIndexedRecordIO, pack, pack_img


def list_image(root, recursive, exts):
    """(index, relative path, label) of every image under `root`, in MXNet's order."""
    i = 0
    if recursive:
        cat = {}
        for path, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            files.sort()
            for fname in files:
                fpath = os.path.join(path, fname)
                suffix = os.path.splitext(fname)[1].lower()
                if os.path.isfile(fpath) and suffix in exts:
                    if path not in cat:
                        cat[path] = len(cat)
                    yield (i, os.path.relpath(fpath, root), cat[path])
                    i += 1
        for k, v in sorted(cat.items(), key=lambda x: x[1]):
            print(os.path.relpath(k, root), v)
    else:
        for fname in sorted(os.listdir(root)):
            fpath = os.path.join(root, fname)
            suffix = os.path.splitext(fname)[1].lower()
            if os.path.isfile(fpath) and suffix in exts:
                yield (i, os.path.relpath(fpath, root), 0)
                i += 1


def write_list(path_out, image_list):
    """Write `image_list` as an .lst file: index, labels ('%f'), path, tab separated."""
    lines = []
    for item in image_list:
        line = "%d\t" % item[0]
        for j in item[2:]:
            line += "%f\t" % j
        lines.append(line + "%s\n" % item[1])
    fileio.atomic_write_text(path_out, "".join(lines))


def make_list(args):
    """--list: the .lst file(s) for the images under args.root."""
    image_list = list(list_image(args.root, args.recursive, args.exts))
    if args.shuffle:
        random.seed(100)          # MXNet's fixed seed: the same lists as its im2rec
        random.shuffle(image_list)
    n = len(image_list)
    chunk_size = (n + args.chunks - 1) // args.chunks
    for i in range(args.chunks):
        chunk = image_list[i * chunk_size:(i + 1) * chunk_size]
        str_chunk = "_%d" % i if args.chunks > 1 else ""
        sep = int(chunk_size * args.train_ratio)
        sep_test = int(chunk_size * args.test_ratio)
        if args.train_ratio == 1.0:
            write_list(args.prefix + str_chunk + ".lst", chunk)
        else:
            if args.test_ratio:
                write_list(args.prefix + str_chunk + "_test.lst", chunk[:sep_test])
            if args.train_ratio + args.test_ratio < 1.0:
                write_list(args.prefix + str_chunk + "_val.lst", chunk[sep_test + sep:])
            write_list(args.prefix + str_chunk + "_train.lst", chunk[sep_test:sep_test + sep])


def read_list(path_in):
    """[index, path, label, ...] per valid line of an .lst file (bad lines reported, skipped)."""
    with open(path_in, encoding="utf-8") as fin:
        for line in fin:
            fields = [i.strip() for i in line.strip().split("\t")]
            if len(fields) < 3:
                print(f"lst should have at least has three parts, but only has {len(fields)} "
                      f"parts for {fields}", file=sys.stderr)
                continue
            try:
                yield [int(fields[0])] + [fields[-1]] + [float(i) for i in fields[1:-1]]
            except ValueError as err:
                print(f"Parsing lst met error for {fields}, detail: {err}", file=sys.stderr)


def image_encode(args, item):
    """The packed record of one list item, or None (reported) when its image is unusable."""
    fullpath = os.path.join(args.root, item[1])
    if len(item) > 3 and args.pack_label:
        header = IRHeader(0, item[2:], item[0], 0)
    else:
        header = IRHeader(0, item[2], item[0], 0)
    if args.pass_through:
        try:
            with open(fullpath, "rb") as fin:
                return pack(header, fin.read())
        except OSError as err:
            print(f"pack_img error: {item[1]} {err}", file=sys.stderr)
            return None
    img = cv2().imread(fullpath, args.color)
    if img is None:
        print(f"imread read blank (None) image for file: {fullpath}", file=sys.stderr)
        return None
    if args.center_crop:
        if img.shape[0] > img.shape[1]:
            margin = (img.shape[0] - img.shape[1]) // 2
            img = img[margin:margin + img.shape[1], :]
        else:
            margin = (img.shape[1] - img.shape[0]) // 2
            img = img[:, margin:margin + img.shape[0]]
    if args.resize:
        if img.shape[0] > img.shape[1]:
            newsize = (args.resize, img.shape[0] * args.resize // img.shape[1])
        else:
            newsize = (img.shape[1] * args.resize // img.shape[0], args.resize)
        img = cv2().resize(img, newsize)
    try:
        return pack_img(header, img, quality=args.quality, img_fmt=args.encoding)
    except ValueError as err:
        print(f"pack_img error on file: {fullpath} {err}", file=sys.stderr)
        return None


def write_record(args, fname, working_dir):
    """Pack the images of list `fname` into <name>.rec and <name>.idx in `working_dir`."""
    stem = os.path.splitext(os.path.basename(fname))[0]
    items = list(read_list(fname))
    written = skipped = 0
    start = time.time()
    with MXIndexedRecordIO(os.path.join(working_dir, stem + ".idx"),
                           os.path.join(working_dir, stem + ".rec"), "w") as record, \
            ThreadPoolExecutor(max(1, args.num_thread)) as pool:
        # map keeps the list's order; OpenCV releases the GIL, so threads decode in parallel
        for count, (item, s) in enumerate(zip(items, pool.map(lambda it: image_encode(args, it),
                                                                items))):
            if s is None:
                skipped += 1
                continue
            record.write_idx(item[0], s)
            written += 1
            if count % 1000 == 0:
                print("time:", time.time() - start, " count:", count)
    print(f"{stem}.rec: {written} images written, {skipped} skipped")
    return written, skipped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Create an image list or make a record database by reading from an "
                    "image list")
    parser.add_argument("prefix", help="prefix of input/output lst and rec files.")
    parser.add_argument("root", help="path to folder containing images.")
    cgroup = parser.add_argument_group("Options for creating image lists")
    cgroup.add_argument("--list", action="store_true",
                        help="create image list(s) by traversing root and write <prefix>.lst; "
                             "otherwise read <prefix>*.lst and write .rec/.idx files")
    cgroup.add_argument("--exts", nargs="+", default=[".jpeg", ".jpg", ".png"],
                        help="list of acceptable image extensions.")
    cgroup.add_argument("--chunks", type=int, default=1, help="number of chunks.")
    cgroup.add_argument("--train-ratio", type=float, default=1.0,
                        help="Ratio of images to use for training.")
    cgroup.add_argument("--test-ratio", type=float, default=0,
                        help="Ratio of images to use for testing.")
    cgroup.add_argument("--recursive", action="store_true",
                        help="walk sub-folders, one label per folder; otherwise only the "
                             "images in root, label 0")
    cgroup.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                        help="keep the images in folder order in the list")
    rgroup = parser.add_argument_group("Options for creating database")
    rgroup.add_argument("--pass-through", action="store_true",
                        help="store the image files as they are (no decode, resize or encode)")
    rgroup.add_argument("--resize", type=int, default=0,
                        help="resize the shorter edge of image to the newsize; original size "
                             "by default")
    rgroup.add_argument("--center-crop", action="store_true",
                        help="crop the center of the image to make it square")
    rgroup.add_argument("--quality", type=int, default=95,
                        help="JPEG quality for encoding, 1-100; or PNG compression, 1-9")
    rgroup.add_argument("--num-thread", type=int, default=1,
                        help="number of threads to use for encoding (the order of the list "
                             "is kept)")
    rgroup.add_argument("--color", type=int, default=1, choices=[-1, 0, 1],
                        help="1: color (alpha dropped), 0: grayscale, -1: as stored")
    rgroup.add_argument("--encoding", type=str, default=".jpg", choices=[".jpg", ".png"],
                        help="specify the encoding of the images.")
    rgroup.add_argument("--pack-label", action="store_true",
                        help="also pack multi-dimensional labels in the record file")
    args = parser.parse_args(argv)
    args.prefix = os.path.abspath(args.prefix)
    args.root = os.path.abspath(args.root)
    if not os.path.isdir(args.root):
        parser.error(f"root {args.root!r} is not a folder")
    if args.chunks < 1 or args.num_thread < 1:
        parser.error("--chunks and --num-thread must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        make_list(args)
        return 0
    working_dir = args.prefix if os.path.isdir(args.prefix) else os.path.dirname(args.prefix)
    lists = sorted(os.path.join(working_dir, f) for f in os.listdir(working_dir)
                   if os.path.isfile(os.path.join(working_dir, f)))
    lists = [f for f in lists if f.startswith(args.prefix) and f.endswith(".lst")]
    if not lists:
        print(f"Did not find and list file with prefix {args.prefix}", file=sys.stderr)
        return 1
    for fname in lists:
        print("Creating .rec file from", fname, "in", working_dir)
        write_record(args, fname, working_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
