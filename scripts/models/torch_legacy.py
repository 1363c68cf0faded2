"""Reads a PyTorch checkpoint in the legacy (pre-1.6, non-zip) serialisation format into numpy arrays, without torch.

Unpickling untrusted data runs code, so this unpickler allows exactly the classes a state dict needs
(collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the storage types) and refuses every other one.

The legacy format is five things one after another: a pickled magic number, the protocol version (1001), a system-info
dict, the pickled object whose tensors name their storages by persistent id ('storage', type, key, location, size,
view), the pickled list of storage keys in file order, and then for each key an int64 element count and the raw
little-endian data.
"""
import collections
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGE_TYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                 "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                 "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class CheckpointError(Exception):
    """A file that is not a legacy PyTorch state dict, or one that asks for a class we do not allow."""


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, np.dtype(STORAGE_TYPES[name])


class _Storage:
    """A storage whose data is read after the main pickle; tensors keep a reference and are built at the end."""

    def __init__(self, dtype, size):
        self.dtype, self.size, self.data = dtype, size, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        item = self.storage.dtype.itemsize
        if self.size and (self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= self.storage.size):
            raise CheckpointError(f"tensor of size {self.size} runs past its storage of {self.storage.size}")
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], shape=self.size,
                                               strides=[s * item for s in self.stride])
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *metadata):
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor whose storage is not a storage")
    return _Tensor(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_TYPES:
            return _StorageType(name)
        raise CheckpointError(f"refusing to unpickle {module}.{name}: not part of a state dict")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage" and len(saved_id) == 6):
            raise CheckpointError(f"unknown persistent id {saved_id!r:.80}")
        storage_type, key, _location, size, view = saved_id[1:]
        if not isinstance(storage_type, _StorageType) or view is not None:
            raise CheckpointError("storage views and unknown storage types are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(size))
        return self.storages[key]


def _plain(file):
    """The header pickles hold only numbers and dicts of plain values: no class is allowed at all."""
    class Plain(pickle.Unpickler):
        def find_class(self, module, name):
            raise CheckpointError(f"refusing to unpickle {module}.{name} in the header")
    return Plain(file).load()


def load(path):
    """The state dict at `path` as an OrderedDict of name -> numpy array."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise CheckpointError(f"{path} is a zip checkpoint (torch >= 1.6), not the legacy format")
        f.seek(0)
        if _plain(f) != MAGIC or _plain(f) != PROTOCOL:
            raise CheckpointError(f"{path} is not a legacy PyTorch checkpoint (wrong magic number or protocol)")
        _plain(f)  # system info: endianness and type sizes; little-endian is all we read
        storages = {}
        result = _Unpickler(f, storages).load()
        keys = _plain(f)
        if sorted(keys) != sorted(storages):
            raise CheckpointError(f"{path}: the storage list does not match the tensors")
        for key in keys:
            storage = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            if count != storage.size:
                raise CheckpointError(f"{path}: storage {key} holds {count} elements, its tensors say {storage.size}")
            raw = f.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise CheckpointError(f"{path}: truncated in storage {key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    if not isinstance(result, dict):
        raise CheckpointError(f"{path} holds a {type(result).__name__}, not a state dict")
    return collections.OrderedDict((name, value.array() if isinstance(value, _Tensor) else value)
                                   for name, value in result.items())
