"""Making image samples from a `.rec` file, apart from any iterator's bookkeeping.

`decode_records(source, offsets, seeds)` is a pure function of a small,
picklable `ImageRecordSource` (file paths and augmentation settings), the
byte offsets of the records and one seed per record: it reads, decodes and
augments them into a (n, c, h, w) array plus labels, anywhere the file can
be read. `ImageRecordIter` calls it in a thread pool on the driver; a
device worker could call it on its own part of a batch.

Also here: the record table of a file (from its `.idx` or by scanning the
headers) and MXNet's rules for splitting it into `num_parts`.
"""
import functools
import os
from dataclasses import dataclass

import numpy as np

from ..image.augment import DECODE_FLAG, AugmentSpec, augment, to_chw
from ..image.codec import imdecode_bgr
from ..recordio import RecordIOError, read_record_at, scan_record_offsets, unpack

FILLER = -1   # an offset meaning "no record: a zero sample" (the unfilled end of a batch)


@dataclass(frozen=True)
class ImageRecordSource:
    """Where the images come from and what is done to them.

    Parameters
    ----------
    path_imgrec : str
        The `.rec` file.
    augment : AugmentSpec
    label_width : int
        Labels per image.
    path_imglist : str
        Optional `.lst` file whose labels replace the records' own (matched
        by the record header's id, the first column of the list).
    """

    path_imgrec: str
    augment: AugmentSpec
    label_width: int = 1
    path_imglist: str = ""

    @property
    def sample_shape(self):
        return self.augment.data_shape


def decode_records(source, offsets, seeds=None, out=None):
    """Read, decode and augment the records at `offsets` of `source.path_imgrec`.

    Parameters
    ----------
    source : ImageRecordSource
    offsets : sequence of int
        Byte offsets of the records' first headers; `FILLER` (-1) gives an
        all-zero sample with zero labels and id -1.
    seeds : sequence of int, optional
        One per record: the seed of its random augmentation (unused when
        the augmentation has no randomness).
    out : tuple (data, label, ids), optional
        Arrays of shape (n, c, h, w), (n, label_width), (n,) to fill.

    Returns
    -------
    data : numpy.ndarray
        (n, c, h, w), float32 (or uint8 with dtype='uint8'), channels RGB.
    label : numpy.ndarray
        (n, label_width) float32.
    ids : numpy.ndarray
        (n,) int64: each record's header id.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets)
    spec = source.augment
    if out is None:
        out = (np.empty((n,) + spec.data_shape, spec.dtype),
               np.empty((n, source.label_width), np.float32), np.empty(n, np.int64))
    data, label, ids = out
    if seeds is not None and len(seeds) != n:
        raise ValueError(f"decode_records: {n} offsets but {len(seeds)} seeds")
    labels_by_id = _label_map(source.path_imglist, source.label_width) \
        if source.path_imglist else None
    fd = os.open(source.path_imgrec, os.O_RDONLY)
    try:
        def pread(count, offset):
            return os.pread(fd, count, offset)
        for i, offset in enumerate(offsets):
            if offset == FILLER:
                data[i], label[i], ids[i] = 0, 0, -1
                continue
            rng = np.random.default_rng(int(seeds[i])) \
                if spec.is_random and seeds is not None else None
            ids[i], label[i] = _one(source, pread, int(offset), rng, data[i], labels_by_id)
    finally:
        os.close(fd)
    return data, label, ids


def _one(source, pread, offset, rng, out, labels_by_id):
    payload, _ = read_record_at(pread, offset, source.path_imgrec)
    if payload is None:
        raise RecordIOError(source.path_imgrec, offset, "a record, found the end of the file")
    header, encoded = unpack(payload)
    what = f"{source.path_imgrec}: record id {header.id} at byte offset {offset}"
    spec = source.augment
    img = imdecode_bgr(encoded, DECODE_FLAG[spec.data_shape[0]], what=what)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels != spec.data_shape[0]:
        raise ValueError(f"{what}: image has {channels} channels, data_shape "
                         f"{spec.data_shape} expects {spec.data_shape[0]}")
    label = _label(source, header, labels_by_id, what)
    img = augment(img, spec, rng, what)
    to_chw(img, spec, rng, out)
    return header.id, label


def _label(source, header, labels_by_id, what):
    if labels_by_id is not None:
        try:
            return labels_by_id[header.id]
        except KeyError:
            raise ValueError(f"{what}: id {header.id} is not in path_imglist "
                             f"{source.path_imglist!r}") from None
    if header.flag > 0:
        if header.flag != source.label_width:
            raise ValueError(f"{what}: the record has {header.flag} labels but label_width is "
                             f"{source.label_width}")
        return header.label
    if source.label_width != 1:
        raise ValueError(f"{what}: the record has one label in its header but label_width is "
                         f"{source.label_width} (multi-label records need im2rec --pack-label, "
                         "or pass path_imglist)")
    return header.label


@functools.lru_cache(maxsize=8)
def _label_map(path_imglist, label_width):
    """{image index: labels} from a .lst file (index, labels..., path; tab separated)."""
    labels = {}
    with open(path_imglist, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.strip().split("\t")
            if fields == [""]:
                continue
            try:
                if len(fields) < label_width + 1:
                    raise ValueError
                labels[int(fields[0])] = np.array(fields[1:1 + label_width], np.float32)
            except ValueError:
                raise ValueError(f"{path_imglist}: line {number}: expected an index and "
                                 f"{label_width} label(s), tab separated, found "
                                 f"{line.rstrip()!r}") from None
    return labels


# ------------------------------------------------------------------ record tables and parts


def record_offsets(path_imgrec, path_imgidx=""):
    """Byte offsets of every record of `path_imgrec`, in file order.

    From the `.idx` file when given (any order of lines; MXNet sorts them by
    offset), else by reading every record header of the `.rec` file.
    """
    if not path_imgidx:
        return scan_record_offsets(path_imgrec)
    offsets = []
    with open(path_imgidx, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.strip().split("\t")
            if fields == [""]:
                continue
            try:
                offsets.append(int(fields[1]))
            except (ValueError, IndexError):
                raise RecordIOError(path_imgidx, f"line {number}",
                                    f"'<key>\\t<offset>', found {line.rstrip()!r}") from None
    offsets = np.unique(np.asarray(offsets, dtype=np.int64))
    size = os.path.getsize(path_imgrec)
    if len(offsets) and (offsets[0] < 0 or offsets[-1] >= size):
        bad = offsets[0] if offsets[0] < 0 else offsets[-1]
        raise RecordIOError(path_imgidx, "an offset",
                            f"offsets inside {path_imgrec} ({size} bytes), found {bad}")
    return offsets


def part_offsets(offsets, file_size, num_parts, part_index, indexed):
    """The records of part `part_index` of `num_parts`, MXNet's way.

    With an index (`indexed`), parts are runs of ceil(n / num_parts) records.
    Without one, MXNet splits the file into num_parts equal byte ranges
    (rounded up to 4 bytes) and each part takes the records that start in
    its range.
    """
    n = len(offsets)
    if indexed:
        step = -(-n // num_parts)
        begin = min(step * part_index, n)
        return offsets[begin:min(begin + step, n)]
    step = -(-file_size // num_parts)
    step = -(-step // 4) * 4
    begin, end = min(step * part_index, file_size), min(step * (part_index + 1), file_size)
    if begin == end:
        return offsets[:0]
    return offsets[np.searchsorted(offsets, begin):np.searchsorted(offsets, end)]
