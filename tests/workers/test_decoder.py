"""How the decoding process answers when its upload cannot be read: the store's failure (the
dataset is tried again) when a keyed upload's local copy goes while it is read; gone for good
when a file uploaded before the store is."""

import pytest

from app.datasets.files import legacy_upload_path
from app.storage.local import LocalFolder
from app.storage.store import StoreError
from tests.conftest import Env
from workers.decoder import DecodeRequest, Decoding, reply_for


def request(upload_key: str | None, upload_sha256: str | None) -> DecodeRequest:
    return DecodeRequest("d1", "images", {}, 0, 1, upload_key, upload_sha256)


def test_a_keyed_upload_whose_local_copy_goes_while_read_is_a_store_failure(env: Env) -> None:
    store = LocalFolder(env.artifacts_dir)
    published = store.publish_bytes("datasets/d1/upload.zip", b"archive")
    decoding = Decoding(env.settings(), store, request(published.key, published.sha256))
    gone = FileNotFoundError(2, "No such file or directory")
    with pytest.raises(StoreError) as failed, decoding.upload() as path:
        assert path.read_bytes() == b"archive"
        raise gone
    message = f"{store.description}: reading datasets/d1/upload.zip: {gone}"
    assert reply_for(env.settings(), failed.value) == {"store_failed": message}


def test_a_file_uploaded_before_the_store_that_is_gone_fails_the_dataset(env: Env) -> None:
    decoding = Decoding(env.settings(), LocalFolder(env.artifacts_dir), request(None, None))
    with pytest.raises(FileNotFoundError) as gone, decoding.upload() as path:
        assert path == legacy_upload_path(env.data_dir, "d1")
        path.read_bytes()
    assert reply_for(env.settings(), gone.value) == {
        "error": f"its upload is gone ({gone.value}); upload it again"
    }
