"""Loaders for user data (image folders, MedMNIST npz, DICOM, NIfTI) and the torch PatchDataset.

Every test writes its own tiny files in the real format."""

import io
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from torch.utils.data import DataLoader

from models.data import PatchDataset
from models.data.dicom import SAFE_TAGS, UnreadableImage, read_dicom
from models.data.folders import iter_image_folder, load_image_folder
from models.data.medmnist import load_medmnist
from models.data.nifti import iter_nifti_slices, read_nifti, slice_volume
from models.fingerprint import fingerprints
from models.preprocess import PreprocessSpec, to_model_input

torch.set_num_threads(1)

RAW = (np.arange(20, dtype=np.uint16) * 100).reshape(4, 5)
PATIENT = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-4711",
    "PatientBirthDate": "19700101",
    "AccessionNumber": "ACC-99",
    "InstitutionName": "Saint Nowhere Hospital",
    "StudyDate": "20240102",
}


def _dicom_bytes(frames: list[np.ndarray], **tags: str | int) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    for key, text in {**PATIENT, "Modality": "CR", "BodyPartExamined": "CHEST"}.items():
        setattr(ds, key, text)
    ds.Rows, ds.Columns = frames[0].shape
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = np.stack(frames).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# ---- DICOM --------------------------------------------------------------------------------------


def test_dicom_rescale_then_monochrome1_inversion() -> None:
    data = _dicom_bytes(
        [RAW], PhotometricInterpretation="MONOCHROME1", RescaleSlope=2, RescaleIntercept=-10
    )
    image = read_dicom(data)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (4, 5)
    # modality LUT: 2·raw − 10 in [−10, 3790]; MONOCHROME1: inverted within that range
    np.testing.assert_allclose(image.pixels, 3790.0 - 2.0 * RAW)
    assert image.pixels[0, 0] > image.pixels[-1, -1]  # raw 0 is shown white


def test_dicom_window_is_applied() -> None:
    image = read_dicom(_dicom_bytes([RAW], WindowCenter=1000, WindowWidth=400))
    low, high = image.pixels.min(), image.pixels.max()
    assert np.all(image.pixels[RAW <= 700] == low)
    assert np.all(image.pixels[RAW >= 1300] == high)
    inside = image.pixels[(RAW > 800) & (RAW < 1200)]
    assert np.all(np.diff(inside) > 0)


def test_dicom_metadata_has_no_patient_fields(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(_dicom_bytes([RAW]))
    meta = read_dicom(path).metadata
    assert meta["Modality"] == "CR" and meta["BodyPartExamined"] == "CHEST"
    assert meta["Rows"] == 4 and meta["Columns"] == 5
    assert set(meta) <= set(SAFE_TAGS)
    text = repr(meta)
    for value in PATIENT.values():
        assert value not in text
    assert "1.2." not in text  # no UIDs


def test_dicom_multiframe_gives_first_frame() -> None:
    image = read_dicom(_dicom_bytes([RAW, RAW[::-1].copy()]))
    np.testing.assert_allclose(image.pixels, RAW.astype(np.float32))


def test_dicom_without_preamble_is_read() -> None:
    data = _dicom_bytes([RAW])
    assert read_dicom(data[128 + 4 :]).pixels.shape == (4, 5)  # no preamble, no "DICM"


def test_unreadable_inputs_raise(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    with pytest.raises(UnreadableImage):
        read_dicom(png.getvalue())
    with pytest.raises(UnreadableImage):
        read_dicom(b"")
    no_pixels = FileDataset("", Dataset(), file_meta=FileMetaDataset(), preamble=b"\0" * 128)
    no_pixels.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    no_pixels.Modality = "CT"
    buffer = io.BytesIO()
    no_pixels.save_as(buffer)
    with pytest.raises(UnreadableImage, match="no pixel data"):
        read_dicom(buffer.getvalue())
    assert issubclass(UnreadableImage, ValueError)


# ---- image folders, MedMNIST -------------------------------------------------------------------


def _image_tree(root: Path) -> None:
    (root / "b_lung").mkdir(parents=True)
    (root / "a_knee" / "sub").mkdir(parents=True)
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(root / "b_lung" / "one.png")
    Image.fromarray(np.full((6, 8), 50, np.uint8)).save(root / "a_knee" / "sub" / "two.jpg")
    deep = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(root / "a_knee" / "three.tif")
    (root / "a_knee" / "notes.txt").write_text("not an image")


def test_image_folder_classes_sorted_and_formats(tmp_path: Path) -> None:
    _image_tree(tmp_path)
    items = list(iter_image_folder(tmp_path))
    assert [(name, meta["path"]) for _, name, meta in items] == [
        ("a_knee", "a_knee/sub/two.jpg"),
        ("a_knee", "a_knee/three.tif"),
        ("b_lung", "b_lung/one.png"),
    ]
    assert items[1][0].dtype == np.uint16  # native depth is kept by the iterator
    data = load_image_folder(tmp_path)
    assert data.class_names == ["a_knee", "b_lung"]
    assert data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 6, 8) and data.images.dtype == np.uint8
    assert data.images[2].mean() == pytest.approx(0.587 * 200, abs=1)  # luminance of green
    assert data.images[1].max() == 255  # 16-bit scaled to the 8-bit range
    assert load_image_folder(tmp_path, size=4).images.shape == (3, 4, 4)


def test_image_folder_mixed_sizes_need_a_size(tmp_path: Path) -> None:
    _image_tree(tmp_path)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "b_lung" / "big.png")
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path)


def test_medmnist_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    test = load_medmnist(path, "test", class_names=["a", "b", "c"])
    assert test.images.shape == (3, 28, 28)
    assert test.labels.tolist() == [0, 1, 2] and test.labels.dtype == np.int64
    assert test.class_names == ["a", "b", "c"]
    assert load_medmnist(path).class_names == ["0", "1", "2"]
    np.savez(path, train_images=arrays["train_images"], train_labels=np.zeros((6, 4)))
    with pytest.raises(ValueError, match="multi-label"):
        load_medmnist(path)
    with pytest.raises(ValueError, match="lacks"):
        load_medmnist(path, "val")


# ---- NIfTI -------------------------------------------------------------------------------------


def test_nifti_slices_skip_empty(tmp_path: Path) -> None:
    volume = np.zeros((6, 7, 8), np.float32)
    volume[2:4, 1:5, 3:6] = 5.0
    volume[0, 0, 3] = 1.0
    path = tmp_path / "vol.nii.gz"
    nib.Nifti1Image(volume, np.eye(4)).to_filename(path)
    slices = list(iter_nifti_slices(path, axis=2))
    assert [meta["index"] for _, _, meta in slices] == [3, 4, 5]
    assert slices[0][1] == "vol" and slices[0][2]["plane"] == "axial"
    assert slices[0][0].shape == (7, 6)  # rows: second axis (flipped), columns: first axis
    assert len(list(slice_volume(volume, axis=0, min_foreground=0.05))) == 2


def test_nifti_reoriented_to_ras_and_4d_takes_first(tmp_path: Path) -> None:
    volume = np.zeros((4, 3, 2, 2), np.float32)
    volume[0, 0, 0, 0] = 1.0  # first voxel on the x axis of a left-pointing (LAS) grid
    path = tmp_path / "las.nii"
    nib.Nifti1Image(volume, np.diag([-1.0, 1.0, 1.0, 1.0])).to_filename(path)
    data = read_nifti(path)
    assert data.shape == (4, 3, 2)
    assert data[3, 0, 0] == 1.0  # now the right-most voxel of a RAS grid


# ---- PatchDataset ------------------------------------------------------------------------------


@pytest.fixture
def patches() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 32, 32), dtype=np.uint8)
    return images, np.arange(12) % 4


def test_dataset_without_augmentation_is_the_serving_preprocessing(
    patches: tuple[np.ndarray, np.ndarray],
) -> None:
    images, labels = patches
    spec = PreprocessSpec(image_size=24, channels=3)
    dataset = PatchDataset(images, labels, spec, augment=False, fingerprint_size=8)
    image, fingerprint, label = dataset[5]
    np.testing.assert_array_equal(image.numpy(), to_model_input(images[5], spec))
    torch.testing.assert_close(fingerprint, fingerprints(image[None], 8)[0])
    assert label.dtype == torch.int64 and int(label) == 1


def test_augmentation_is_seeded_varied_and_in_range(patches: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = patches
    spec = PreprocessSpec(image_size=32, channels=1)

    def first_epoch(seed: int) -> list[torch.Tensor]:
        dataset = PatchDataset(images, labels, spec, augment=True, seed=seed)
        return [dataset[i][0] for i in range(4)]

    a, b, c = first_epoch(1), first_epoch(1), first_epoch(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    dataset = PatchDataset(images, labels, spec, augment=True, seed=1)
    image, fingerprint, _ = dataset[0]
    assert not torch.equal(image, dataset[0][0])  # fresh augmentation on each access
    assert image.min() >= 0 and image.max() <= 1
    torch.testing.assert_close(fingerprint, fingerprints(image[None], 16)[0])


def test_augmented_epoch_is_fast() -> None:
    images = np.random.default_rng(0).integers(0, 255, (600, 64, 64), dtype=np.uint8)
    dataset = PatchDataset(images, np.zeros(600), PreprocessSpec(64), augment=True)
    start = time.process_time()
    for batch in DataLoader(dataset, batch_size=100):
        assert batch[0].shape == (100, 3, 64, 64)
    assert time.process_time() - start < 1.5  # budget for 6,000 images: well under 10 s
