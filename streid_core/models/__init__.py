"""Networks: the re-ID encoder, the pose-guided generator and the two discriminators."""
