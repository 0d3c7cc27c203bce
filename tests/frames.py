"""A streamed body cut into its SSE frames: the server writes the frames that are ready
together, so one piece of the body may hold several."""

from __future__ import annotations

from collections.abc import Iterable


def split_frames(pieces: Iterable[str]) -> list[str]:
    body = "".join(pieces)
    return [frame + "\n\n" for frame in body.split("\n\n") if frame]
