"""The image folder of `python -m serving.batch_predict`: what is listed and how each file is read.

Listed in sorted order without following links to folders; a file is classed by extension
and read as bytes, refused (with a reason for the dead letter) when empty or not in a
format the serving_image signature decodes (it sniffs the magic number, as the signature does).
"""
from __future__ import annotations

import os
from typing import Iterator

# What the serving_image signature decodes (models/image_decode.py), by extension.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp")
# Images Pillow (hence the conversion) may read but the signature cannot: users put them in an
# image folder expecting predictions, so they are dead-lettered, not ignored.
UNSUPPORTED_EXTENSIONS = (".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".jp2", ".ico", ".ppm",
                          ".pgm", ".pbm", ".pnm", ".psd", ".tga", ".dds", ".pcx")

def sniff(data: bytes) -> str | None:
    """The format the signature would decode the bytes as (by magic number, as it does), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def walk(root: str, rel_dir: str = "") -> Iterator[tuple[str, str, str]]:
    """(kind, relative path, detail) for everything under `root`, in sorted order (each folder's
    entries by name, a sub-folder's contents where its name sorts), holding one folder's entry
    names per level of depth. kind: image, unsupported, other, linked_folder or
    unreadable_folder. Links to folders are not followed (a loop would never end, and their
    images are usually listed under their real path already); links to files are read through."""
    try:
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False), _links_to_folder(e)) for e in it)
    except OSError as e:
        yield "unreadable_folder", rel_dir or ".", f"cannot list the folder: {e.strerror or e}"
        return
    for name, is_dir, is_linked_dir in entries:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        if is_dir:
            yield from walk(root, rel)
        elif is_linked_dir:
            yield "linked_folder", rel, ""
        else:
            ext = os.path.splitext(name)[1].lower()
            kind = "image" if ext in IMAGE_EXTENSIONS else "unsupported" if ext in UNSUPPORTED_EXTENSIONS else "other"
            yield kind, rel, ""


def _links_to_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink() and entry.is_dir()
    except OSError:  # a link loop (ELOOP): listed as a file, whose read then fails and is dead-lettered
        return False


def read_image(root: str, kind: str, rel: str) -> tuple[bytes | None, str, str]:
    """(bytes, "", "") for a file the signature may decode, else (None, reason, detail)."""
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
    except OSError as e:
        return None, "unreadable", f"cannot be read: {e.strerror or e}"
    if not data:
        return None, "empty", "zero-byte file"
    if sniff(data) is None:
        if kind == "unsupported":
            return None, "unsupported_format", (f"{os.path.splitext(rel)[1]} files are not decoded by the serving "
                                                "signature (PNG, JPEG, GIF or BMP expected)")
        return None, "not_an_image", f"neither PNG, JPEG, GIF nor BMP; starts with {data[:16]!r}"
    return data, "", ""
