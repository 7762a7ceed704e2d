"""What a media file is, by its name: the one list of image and video extensions, and the image files of folders."""
from __future__ import annotations

from pathlib import Path

#: Still images (OpenCV reads them).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Video containers (PyAV reads them).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v", ".ts", ".flv")


def is_image(path: str | Path) -> bool:
    """Whether ``path`` names an image by its extension."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def image_files(paths: list[str]) -> list[Path]:
    """Image files among ``paths``, folders walked recursively, in sorted order.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if is_image(f))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"expected an image file or folder, found nothing at {p}")
    return out
