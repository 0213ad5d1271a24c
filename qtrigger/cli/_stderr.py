"""Filter TensorFlow's native log lines out of file descriptor 2 (the CLI's stderr)."""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

_NATIVE_LOG = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_NATIVE_NOISE = (b"failed call to cuInit", b"use_unbounded_threadpool", b"Unable to register", b"computation placer")


class _NativeStderrFilter:
    """Drop TensorFlow's C++ INFO/WARNING lines (and known harmless errors) from fd 2.

    TensorFlow 2.21 logs through absl before any log level is configurable
    (TF_CPP_MIN_LOG_LEVEL no longer silences it), so the CLI filters the stream itself.
    Everything else, Python warnings included, passes through unchanged.
    """

    def __init__(self):
        self.saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.reader = os.fdopen(read_end, "rb", buffering=0)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _pump(self):
        pending = b""
        while chunk := os.read(self.reader.fileno(), 65536):
            pending += chunk
            # progress bars end segments with \r, log lines with \n: relay each segment at once
            segments = re.split(rb"(?<=[\r\n])", pending)
            pending = segments.pop()
            if pending and not self._maybe_native(pending):
                segments.append(pending)
                pending = b""
            for segment in segments:
                if not self._is_noise(segment):
                    os.write(self.saved, segment)
        if pending and not self._is_noise(pending):
            os.write(self.saved, pending)

    @staticmethod
    def _maybe_native(partial: bytes) -> bool:
        """Could this unfinished segment still become a native log line?"""
        return bool(re.match(rb"^[IWEF][\d :.]*$|^[IWEF]\d{4} ", partial)) or b"WARNING: All log messages".startswith(partial[:25])

    @staticmethod
    def _is_noise(segment: bytes) -> bool:
        if segment.startswith(b"WARNING: All log messages before absl::InitializeLog()"):
            return True
        match = _NATIVE_LOG.match(segment)
        return bool(match) and (match.group(1) in (b"I", b"W") or any(n in segment for n in _NATIVE_NOISE))

    def close(self):
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last writer in this process
        self.thread.join(timeout=2)
