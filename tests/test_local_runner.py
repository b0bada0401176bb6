"""The local runner's bookkeeping between components: what each one freed goes back to the
operating system (shopbusy/pipeline/local_runner.py, _ReturnFreedMemory)."""

import logging

from shopbusy.pipeline import local_runner

MB = 1 << 20


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _component_log(message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 0, message, (), None)


def test_a_finished_components_freed_heap_goes_back_to_the_system():
    """300 MB freed in blocks the C heap keeps (each above Python's small-object allocator,
    below glibc's mmap threshold, and one block still in use above them, so glibc's own trim
    of the heap's top cannot return them) stays resident until a component finishes."""
    handler = local_runner._ReturnFreedMemory()
    blocks = [bytearray(8192) for _ in range(300 * MB // 8192)]
    pinned_above = bytearray(8192)
    held = _rss_mb()
    del blocks

    handler.emit(_component_log("Component Trainer is running."))
    assert _rss_mb() > held - 100, "freed heap went back before any component finished"

    handler.emit(_component_log("Component Trainer is finished."))
    assert _rss_mb() < held - 200
    assert len(pinned_above) == 8192
