"""Opt-in compressed storage for the informer cache: zstd with a dictionary trained on the first list.

``InformerOptions(store_compression="zstd")`` (daemon config ``informers.storeCompression: zstd``)
gives the informer's ``Store`` a ``ZstdCodec``: each cached object is then held as one zstd frame
compressed with a dictionary instead of its JSON: 384 B instead of 4.2 KB for bench's pods (1.7 KB
of RSS per pod instead of 4.7; bench/README.md, "Compressed store"), at the price of a decompression
(~5 us; a ``get`` measured 1.6-1.8x a plain one) on every read on top of the JSON decode. Needs the ``compressed`` extra (``pip install 'informerd[compressed]'``);
without it choosing the option raises ``CompressionUnavailableError``, and nothing else imports
``zstandard``.

How the dictionary is made: the codec keeps the first objects it is given as plain JSON (they are
its training samples) until it has ``sample_count`` (256) of them, or until the end of a list that
brought at least ``min_samples`` (16); then it trains a ``dict_size`` (16 KB) dictionary on them
once (~0.1 s, GIL released) and compresses everything after. The store recompresses the list's
objects buffered before that, so a first list of any size ends fully compressed and its peak is
never above the uncompressed store's. Samples too few or too alike for zstd's trainer give a
codec that compresses without a dictionary (~1.5 KB per pod).

Never retrained, on purpose: a dictionary captures a kind's field names and recurring values,
which do not drift with the objects' churn (one trained on the first 256 pods compresses pods
created later as well as those it saw, bench/README.md); and a new one would have to recompress
every cached object at once or keep every old dictionary alive, because a relist keeps the cached
bytes of unchanged objects as they are. A cache that starts empty and grows by watch events keeps
its first ``sample_count`` objects uncompressed until they change.

Invariant: ``decode(encode(json)) == json`` in every state of the codec, for frames made before or
after any other call, because the dictionary never changes once set; a held payload is either the
JSON itself (it starts with ``{``) or one zstd frame (it starts with the zstd magic number).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, Literal, Protocol

import orjson

from .errors import ConfigError
from .objects import RawObject

__all__ = [
    "STORE_COMPRESSIONS",
    "CodecStatistics",
    "CompressionUnavailableError",
    "StoreCodec",
    "StoreCompression",
    "ZstdCodec",
    "store_codec",
    "store_compression_problem",
]

StoreCompression = Literal["zstd"]
"""The names ``InformerOptions.store_compression`` accepts (``None``: keep plain JSON)."""

STORE_COMPRESSIONS: Final[tuple[str, ...]] = ("zstd",)

_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"  # every zstd frame starts with it; JSON objects with "{"


class CompressionUnavailableError(ConfigError):
    """A compressed store was asked for, but the package it needs is not installed.

    Install the extra it names (``pip install 'informerd[compressed]'``) or turn the option off.
    """


@dataclass(frozen=True, slots=True)
class CodecStatistics:
    name: str
    trained: bool
    """Whether the codec compresses yet (before that, objects are held as plain JSON samples)."""
    dictionary_bytes: int
    """Size of the trained dictionary; 0 before training, or when zstd could not train one."""
    trained_on: int
    """Samples the dictionary was trained on."""
    level: int


class StoreCodec(Protocol):
    """What ``Store`` asks of a codec: held form <-> JSON, and a word at the end of each list.

    Methods may be called from any thread; writes (``encode``, ``reencode``, ``end_of_list``) are
    rarely concurrent (the store serialises them) but a codec must not rely on it.
    """

    def encode(self, data: bytes) -> bytes:
        """The held form of a new object's exact JSON bytes (possibly ``data`` itself)."""
        ...

    def reencode(self, data: bytes) -> bytes:
        """``data`` (a held form) in the codec's current form: plain JSON held before training gets compressed."""
        ...

    def decode(self, data: bytes) -> bytes:
        """The JSON bytes of a held form."""
        ...

    def loads(self, data: bytes) -> RawObject:
        """A fresh dict of a held form."""
        ...

    def end_of_list(self) -> bool:
        """A (re)list was buffered; True when the codec changed form since the last call, so that
        the store ``reencode``s what it buffered before."""
        ...

    def statistics(self) -> CodecStatistics: ...


def _import_zstandard() -> ModuleType:
    try:
        import zstandard
    except ImportError as exc:
        raise CompressionUnavailableError(
            "store compression 'zstd' needs the zstandard package: install informerd's 'compressed' extra "
            "(pip install 'informerd[compressed]') or turn store compression off"
        ) from exc
    return zstandard


def _exact(frame: bytes) -> bytes:
    """A copy of ``frame`` in a block of its own size.

    zstandard allocates a frame at the worst-case size (the input's, ~4 KB for a pod) and shrinks it
    in place; the freed tails between kept frames were reused by nothing, so the cache's RSS stayed
    that of the uncompressed store (measured: 5.1 KB per pod). The copy lets the large buffer go whole.
    """
    return bytes(memoryview(frame))


class ZstdCodec:
    """zstd frames with one dictionary trained on the first objects; see the module docstring."""

    def __init__(
        self, *, level: int = 3, dict_size: int = 16 * 1024, sample_count: int = 256, min_samples: int = 16
    ) -> None:
        """``level``: zstd level (default 3; higher buys little on these small frames).
        ``dict_size``: bytes of the dictionary (default 16 KB; 8-64 KB measured the same on pods).
        ``sample_count``: objects to train on (default 256: ~0.1 s; 10,000 took 2 s for nothing).
        ``min_samples``: the fewest a list's end trains on (default 16; zstd refuses below ~8)."""
        if not 1 <= min_samples <= sample_count:
            raise ConfigError(f"need 1 <= min_samples <= sample_count, got {min_samples} and {sample_count}")
        self._zstd = _import_zstandard()
        self._level = level
        self._dict_size = dict_size
        self._sample_count = sample_count
        self._min_samples = min_samples
        self._lock = threading.Lock()  # guards the samples and the compressor (contexts are not thread-safe)
        self._samples: list[bytes] = []
        self._compressor: Any = None  # set once, when trained; never replaced
        self._dictionary: Any = None
        self._dictionary_bytes = 0
        self._trained_on = 0
        self._fresh = False  # trained since the last end_of_list: plain samples may still be buffered
        self._local = threading.local()  # one decompression context per reading thread

    # --- writes -------------------------------------------------------------------------------

    def encode(self, data: bytes) -> bytes:
        with self._lock:
            if self._compressor is None:
                self._samples.append(data)
                if len(self._samples) < self._sample_count:
                    return data  # a training sample, held as it is until the dictionary exists
                self._train()
            return _exact(self._compressor.compress(data))

    def reencode(self, data: bytes) -> bytes:
        if data.startswith(_ZSTD_MAGIC):
            return data
        with self._lock:
            if self._compressor is None:
                return data
            return _exact(self._compressor.compress(data))

    def end_of_list(self) -> bool:
        with self._lock:
            if self._compressor is None and len(self._samples) >= self._min_samples:
                self._train()
            fresh, self._fresh = self._fresh, False
            return fresh

    def _train(self) -> None:
        """Train on the samples and set the compressor; caller holds ``_lock``."""
        zstd = self._zstd
        samples, self._samples = self._samples, []
        self._trained_on = len(samples)
        self._fresh = True
        try:
            dictionary = zstd.train_dictionary(self._dict_size, samples, level=self._level)
            dictionary.precompute_compress(level=self._level)
        except zstd.ZstdError:  # too few or too alike to train on: plain zstd still saves ~60%
            self._compressor = zstd.ZstdCompressor(level=self._level)
            return
        self._dictionary = dictionary
        self._dictionary_bytes = len(dictionary.as_bytes())
        # The dictionary never changes, so frames need not name it (saves up to 4 bytes each).
        self._compressor = zstd.ZstdCompressor(level=self._level, dict_data=dictionary, write_dict_id=False)

    # --- reads --------------------------------------------------------------------------------

    def decode(self, data: bytes) -> bytes:
        if not data.startswith(_ZSTD_MAGIC):
            return data
        try:
            dctx = self._local.dctx
        except AttributeError:
            dctx = self._local.dctx = self._decompressor()
        out: bytes = dctx.decompress(data)
        return out

    def loads(self, data: bytes) -> RawObject:
        return orjson.loads(self.decode(data))  # type: ignore[no-any-return]

    def _decompressor(self) -> Any:
        # Only called for a frame, which exists only once the compressor (and dictionary) is set.
        zstd = self._zstd
        if self._dictionary is None:
            return zstd.ZstdDecompressor()
        return zstd.ZstdDecompressor(dict_data=self._dictionary)

    def statistics(self) -> CodecStatistics:
        # No lock: a scrape must not wait out a training; each field is set once, before the compressor.
        return CodecStatistics(
            name="zstd",
            trained=self._compressor is not None,
            dictionary_bytes=self._dictionary_bytes,
            trained_on=self._trained_on,
            level=self._level,
        )


def store_codec(name: str | None) -> StoreCodec | None:
    """The codec for ``InformerOptions.store_compression``: ``None`` for none, or a new one per store.

    Raises ``CompressionUnavailableError`` if its package is missing, ``ConfigError`` for an unknown name.
    """
    if name is None:
        return None
    if name == "zstd":
        return ZstdCodec()
    raise ConfigError(f"unknown store compression {name!r}; choose one of {', '.join(STORE_COMPRESSIONS)} or None")


def store_compression_problem(name: str | None) -> str | None:
    """Why ``store_codec(name)`` would fail, or ``None``: lets a config check report it up front."""
    try:
        store_codec(name)
    except ConfigError as exc:
        return str(exc)
    return None
