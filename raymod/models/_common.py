"""Argument checks shared by the network builders."""
import numbers


def image_shape_tuple(image_shape):
    """(channels, height, width) from a tuple or MXNet's '3,224,224' string."""
    if isinstance(image_shape, str):
        try:
            image_shape = tuple(int(v) for v in image_shape.split(","))
        except ValueError as err:
            raise ValueError(f"image_shape must look like '3,224,224', received "
                             f"{image_shape!r}") from err
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or not all(isinstance(v, numbers.Integral) and v > 0
                                        for v in image_shape):
        raise ValueError(f"image_shape must be (channels, height, width) of positive ints, "
                         f"received {image_shape!r}")
    return image_shape


def check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what} must be one of {sorted(choices)}, received {value!r}")
    return value


def positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, received {value!r}")
    return int(value)
