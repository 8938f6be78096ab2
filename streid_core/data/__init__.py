"""Data: dataset formats, records, images, keypoints, pose maps, samplers, transforms, synthetic data."""
from .dataset import load_dataset, resolve_dataset_dir
from .records import LoadedDataset, Record

__all__ = ["LoadedDataset", "Record", "load_dataset", "resolve_dataset_dir"]
