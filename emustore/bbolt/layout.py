"""Where a commit puts things: elements cut into pages, inline buckets, and page allocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from emustore.bbolt.pages import (
    BRANCH_ELEMENT,
    BUCKET_FLAG,
    HEADER,
    LEAF_ELEMENT,
    encode_bucket,
    encode_leaf,
    leaf_size,
)

Element = tuple[int, bytes, bytes]  # leaf element: flags, key, value
Child = tuple[bytes, int]  # branch element: first key below, page id
T = TypeVar("T")


def split_leaf(elements: list[Element], page_size: int) -> list[list[Element]]:
    """Leaf pages' worth of sorted elements: each page filled up to one page; an element larger than
    a page gets a leaf of its own, with overflow pages. An empty bucket is one empty leaf."""
    return _split(elements, page_size, lambda element: LEAF_ELEMENT.size + len(element[1]) + len(element[2]))


def split_branch(children: list[Child], page_size: int) -> list[list[Child]]:
    """Branch pages' worth of children, each filled up to one page."""
    return _split(children, page_size, lambda child: BRANCH_ELEMENT.size + len(child[0]))


def _split(items: list[T], page_size: int, size_of: Callable[[T], int]) -> list[list[T]]:
    chunks: list[list[T]] = [[]]
    used = HEADER.size
    for item in items:
        size = size_of(item)
        if chunks[-1] and used + size > page_size:
            chunks.append([])
            used = HEADER.size
        chunks[-1].append(item)
        used += size
    return chunks


def inline_value(elements: list[Element], sequence: int, page_size: int) -> bytes | None:
    """The value of a bucket stored inline (root 0, its leaf page inside the value), as bbolt
    stores a bucket with no sub-bucket whose page is at most a quarter page; None when it is not."""
    if any(flags & BUCKET_FLAG for flags, _, _ in elements) or leaf_size(elements) > page_size // 4:
        return None
    return encode_bucket(0, sequence, encode_leaf(0, elements, page_size, inline=True))


class Allocator:
    """Pages for a commit: runs of the current state's free pages, else past the high-water mark."""

    def __init__(self, free: list[int], hwm: int) -> None:
        self.free = sorted(free)
        self.hwm = hwm

    def take(self, count: int) -> int:
        """The first page of `count` consecutive pages nobody references now."""
        run_start = 0
        for index, pgid in enumerate(self.free):
            if index > run_start and pgid != self.free[index - 1] + 1:
                run_start = index
            if index - run_start + 1 == count:
                first = self.free[run_start]
                del self.free[run_start : index + 1]
                return first
        first = self.hwm
        self.hwm += count
        return first
