"""The bound on how far a layer may decompress (`--max-expansion`): a bomb is refused by the
bytes that actually arrived, never by the size a manifest claims."""

from __future__ import annotations

from dataclasses import dataclass

MAX_EXPANSION = 1100  # gzip cannot exceed ~1032:1; more is a bomb (or a zstd/bzip2 extreme)
MIN_EXPANSION_LIMIT = 1 << 30


@dataclass(frozen=True)
class ExpansionLimit:
    """A layer may decompress to max(`floor`, `ratio` × the compressed bytes received so far):
    bounded by the bytes that actually arrived, never by the size a manifest claims."""

    ratio: int
    floor: int

    def refusal(self, output: int, received: int) -> str | None:
        """Why `output` decompressed bytes from `received` compressed ones are too many, if they are."""
        allowed = max(self.floor, self.ratio * received)
        if output <= allowed:
            return None
        return (
            "layer expands beyond %d bytes from the %d compressed bytes received (%d times those, at least %d): "
            "refusing it" % (allowed, received, self.ratio, self.floor)
        )


def expansion_limit(ratio: int = MAX_EXPANSION) -> ExpansionLimit | None:
    """The limit of `--max-expansion RATIO`, at least MIN_EXPANSION_LIMIT (1 GiB); a ratio of 0 means none."""
    return ExpansionLimit(ratio, MIN_EXPANSION_LIMIT) if ratio else None
