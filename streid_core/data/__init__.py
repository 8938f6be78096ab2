"""Data: dataset formats, records, images, keypoints, pose maps, samplers, transforms, synthetic data."""
