"""Go's path.Clean on byte strings: the lexical cleaning dockerd applies to tar names."""


def go_clean(path: bytes) -> bytes:
    """Shortest equivalent path by purely lexical processing, as Go's filepath.Clean."""
    if not path:
        return b"."
    if b"//" not in path and b"/." not in path and not path.startswith(b".") and not path.endswith(b"/"):
        return path  # already clean: no empty, "." or ".." element, no trailing slash
    rooted = path.startswith(b"/")
    out: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if out and out[-1] != b"..":
                out.pop()
            elif not rooted:
                out.append(part)
            continue
        out.append(part)
    cleaned = b"/".join(out)
    if rooted:
        return b"/" + cleaned
    return cleaned or b"."


def go_dir(path: bytes) -> bytes:
    """Go's filepath.Dir: everything but the last element, cleaned."""
    idx = path.rfind(b"/")
    return go_clean(path[: idx + 1]) if idx >= 0 else b"."


def go_base(path: bytes) -> bytes:
    """Go's filepath.Base for a cleaned path."""
    path = path.rstrip(b"/")
    if not path:
        return b"/"
    return path[path.rfind(b"/") + 1 :]
