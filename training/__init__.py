"""Features, models, augmentation and the train/evaluate loop; no file or tracking I/O."""
