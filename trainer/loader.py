"""Micro-batches for one worker, tokenized and packed ahead of time by a background thread.

A worker owns one or more data shards (`SequenceStream`s) and takes its micro-batches from them
in turn. The thread runs at most `prefetch` micro-batches ahead; each micro-batch travels with
the state of its stream right after it, so `state_dict()` describes exactly what the training
loop has consumed, not what the thread has read ahead.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.trainer.data import SequenceStream, SourceExhausted

_END = object()


@dataclass
class MicroBatch:
    """`micro_batch_size` packed windows from one data shard."""

    tokens: np.ndarray
    """int64 (micro_batch_size, seq_len + 1): inputs are `[:, :-1]`, targets `[:, 1:]`."""
    source_tokens: np.ndarray
    """Target tokens of this micro-batch per mixture source."""
    shard: int
    """The data shard it came from."""


class BatchLoader:
    """Iterator of `MicroBatch`es over this worker's data shards; ends when a source is exhausted
    (only when data is not repeated)."""

    def __init__(self, streams: dict[int, SequenceStream], micro_batch_size: int,
                 prefetch: int = 4) -> None:
        self._streams, self._shards = streams, sorted(streams)
        self._micro_batch_size, self._prefetch = micro_batch_size, prefetch
        self._position = 0  # micro-batches consumed; position % len(shards) picks the next shard
        self._consumed = {shard: stream.state_dict() for shard, stream in streams.items()}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finished = False

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self._streams[self._shards[0]].mixture.sources]

    def epochs(self) -> dict[str, int]:
        """Completed epochs per source (the most any of this worker's shards has completed)."""
        return {name: max(state["mixture"]["sources"][name]["epoch"]
                          for state in self._consumed.values())
                for name in self.source_names}

    def __iter__(self) -> "BatchLoader":
        return self

    def __next__(self) -> MicroBatch:
        if self._finished:
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="curate-data", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        batch, state = item
        self._consumed[batch.shard] = state
        self._position += 1
        return batch

    def _produce(self) -> None:
        position = self._position
        try:
            while not self._stop.is_set():
                shard = self._shards[position % len(self._shards)]
                stream = self._streams[shard]
                windows, counts = zip(*(stream.next_sequence() for _ in range(self._micro_batch_size)))
                batch = MicroBatch(np.stack(windows), np.sum(counts, axis=0), shard)
                self._put((batch, stream.state_dict()))
                position += 1
        except SourceExhausted:
            self._put(_END)
        except BaseException as err:  # handed to the training loop, which raises it
            self._put(err)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def state_dict(self) -> dict[str, Any]:
        """Stream states after the last consumed micro-batch, and the round-robin position."""
        return dict(streams=dict(self._consumed), position=self._position)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore before the first `next()`. Shards this worker does not own are ignored."""
        if self._thread is not None:
            raise RuntimeError("load_state_dict must come before iterating")
        for shard, stream in self._streams.items():
            stream.load_state_dict(state["streams"][shard])
            self._consumed[shard] = stream.state_dict()
        self._position = state["position"]
