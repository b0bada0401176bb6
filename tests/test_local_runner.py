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
    """280 MB freed in holes the C heap keeps stays resident until a component finishes: 8 KB
    blocks (above Python's small-object allocator, below glibc's mmap threshold), every 16th
    kept alive, so that no freed stretch reaches the heap's top, which glibc trims itself."""
    handler = local_runner._ReturnFreedMemory()
    blocks = [bytearray(8192) for _ in range(300 * MB // 8192)]
    kept = blocks[::16]
    held = _rss_mb()
    del blocks

    handler.emit(_component_log("Component Trainer is running."))
    assert _rss_mb() > held - 100, "freed heap went back before any component finished"

    handler.emit(_component_log("Component Trainer is finished."))
    assert _rss_mb() < held - 200
    assert all(len(block) == 8192 for block in kept)
