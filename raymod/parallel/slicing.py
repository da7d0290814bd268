"""How a batch is cut across devices: MXNet's `_split_input_slice` and batch axes."""


def split_input_slice(batch_size, work_load_list):
    """Slices of a batch in proportion to `work_load_list` (MXNet's rounding, exactly).

    Python 3's round() is banker's rounding; MXNet inherits it and so do we:
    (7, [1, 1]) -> [0:4, 4:7], (2, [1, 1, 1]) -> ValueError.
    """
    total = sum(work_load_list)
    nums = [round(w * batch_size / total) for w in work_load_list]
    if sum(nums) < batch_size:
        nums[-1] += batch_size - sum(nums)
    slices, end = [], 0
    for n in nums:
        begin = int(min(end, batch_size))
        end = int(min(begin + n, batch_size))
        if begin >= end:
            raise ValueError("Too many slices. Some splits are empty.")
        slices.append(slice(begin, end))
    return slices


def batch_axis(layout):
    """Index of 'N' in a layout string (0 for None, -1 when there is no batch axis)."""
    if layout is None:
        return 0
    return layout.find("N")


def slice_along(array, axis, sl):
    """array[sl] along `axis` (a view); the whole array when axis < 0."""
    if axis < 0:
        return array
    if axis == 0:
        return array[sl]
    index = [slice(None)] * array.ndim
    index[axis] = sl
    return array[tuple(index)]


def sliced_shape(shape, axis, sl):
    if axis < 0:
        return tuple(shape)
    shape = list(shape)
    shape[axis] = sl.stop - sl.start
    return tuple(shape)
