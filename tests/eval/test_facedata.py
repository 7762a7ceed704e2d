"""Identity folders: what ``eval --ids`` and ``distil`` read."""
from __future__ import annotations

import pytest

from streamfiqa.eval.facedata import read_identities


def test_an_identity_folder_that_is_a_file_or_missing_says_which(tmp_path):
    (tmp_path / "ids.csv").write_text("file,identity\n")
    with pytest.raises(FileNotFoundError, match="expected an identity folder, found a file at"):
        read_identities(tmp_path / "ids.csv")
    with pytest.raises(FileNotFoundError, match="expected an identity folder, found nothing at"):
        read_identities(tmp_path / "missing")
